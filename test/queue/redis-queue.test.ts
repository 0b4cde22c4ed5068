import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { InfraError } from '../../src/errors/buildman-error.js';
import { RedisQueue, type RedisQueueOptions } from '../../src/queue/redis-queue.js';
import { queueContract } from './queue-contract.js';
import { cleanupPrefix, redisTestConfig, RedisServerChild, testClient } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

const prefixes: string[] = [];
const open: RedisQueue[] = [];

/** A prefix of its own for each test; its keys are deleted afterwards. */
function newPrefix(): string {
  const prefix = `test:${randomUUID()}:`;
  prefixes.push(prefix);
  return prefix;
}

async function openQueue(prefix: string, opts: Partial<RedisQueueOptions> = {}, port?: number): Promise<RedisQueue> {
  const config = port === undefined ? redisTestConfig() : redisTestConfig({ REDIS_HOST: '127.0.0.1', REDIS_PORT: port });
  const q = new RedisQueue(config, { prefix, ...opts });
  open.push(q);
  await q.ready();
  return q;
}

/** Resolves on the listener's next call; rejects after `timeoutMs`. */
function nextCall(q: RedisQueue, timeoutMs = 3000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timeout = setTimeout(() => {
      off();
      reject(new Error(`onAvailable not called within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = q.onAvailable(() => {
      clearTimeout(timeout);
      off();
      resolve();
    });
  });
}

afterEach(async () => {
  await Promise.all(open.splice(0).map((q) => q.close()));
  for (const prefix of prefixes.splice(0)) await cleanupPrefix(prefix);
});

queueContract('RedisQueue', async (clock) => openQueue(newPrefix(), { now: clock.now }));

describe('RedisQueue across managers', () => {
  it('20 managers racing for one item: exactly one wins', async () => {
    const prefix = newPrefix();
    const queues = await Promise.all(Array.from({ length: 20 }, () => openQueue(prefix)));
    const id = await queues[0].put('dockerfilebuild/ns/repo/', '{"build_uuid":"b1"}', { retries: 3 });
    const got = await Promise.all(queues.map((q) => q.claim(60)));
    const winners = got.filter((g) => g !== null);
    expect(winners).toHaveLength(1);
    expect(winners[0]).toMatchObject({ id, retriesRemaining: 2 });
    expect(await queues[1].stats()).toEqual({ available: 0, running: 1, delayed: 0 });
  });

  it('5 managers draining 50 items of 10 repositories: one running per repository, each item once', async () => {
    const prefix = newPrefix();
    const queues = await Promise.all(Array.from({ length: 5 }, () => openQueue(prefix)));
    const ids = new Set<string>();
    for (let i = 0; i < 50; i++) ids.add(await queues[i % 5].put(`dockerfilebuild/ns/repo${Math.floor(i / 5)}/`, `item ${i}`)); // siblings adjacent: the hardest order

    const running = new Set<string>();
    const claimed: string[] = [];
    const overlaps: string[] = [];
    async function work(q: RedisQueue): Promise<void> {
      while (claimed.length < 50) {
        const item = await q.claim(60);
        if (!item) {
          await sleep(2);
          continue;
        }
        claimed.push(item.id);
        if (running.has(item.queueName)) overlaps.push(item.queueName);
        running.add(item.queueName);
        await sleep(Math.random() * 3);
        // Free the repository in our books before Redis does, so a sibling's claim never looks early.
        running.delete(item.queueName);
        await q.complete(item);
      }
    }
    await Promise.all(queues.map(work));

    expect(overlaps).toEqual([]);
    expect(claimed).toHaveLength(50);
    expect(new Set(claimed)).toEqual(ids);
    expect(await queues[0].stats()).toEqual({ available: 0, running: 0, delayed: 0 });
  });

  it('a put on one manager calls the listeners of another', async () => {
    const prefix = newPrefix();
    const a = await openQueue(prefix);
    const b = await openQueue(prefix);
    const heard = nextCall(b);
    await a.put('a/', 'x');
    await heard;
  });

  it("wakes another manager when a dead manager's lease lapses, with no message at that moment", async () => {
    const prefix = newPrefix();
    const a = await openQueue(prefix);
    const b = await openQueue(prefix);
    const id = await a.put('a/', 'x');
    await a.claim(0.3);
    await a.close(); // the claiming manager dies holding the lease
    await sleep(50);
    const started = Date.now();
    await nextCall(b);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    expect((await b.claim(60))?.id).toBe(id);
  });

  it('completing on one manager frees the repository for a listener on another', async () => {
    const prefix = newPrefix();
    const a = await openQueue(prefix);
    const b = await openQueue(prefix);
    await a.put('a/', 'first');
    const sibling = await a.put('a/', 'second');
    const item = await a.claim(60);
    await sleep(30);
    const heard = nextCall(b);
    await a.complete(item!);
    await heard;
    expect((await b.claim(60))?.id).toBe(sibling);
  });

  it('ignores events of another queue under the same prefix', async () => {
    const prefix = newPrefix();
    const builds = await openQueue(prefix);
    const other = await openQueue(prefix, { queueName: 'other' });
    let calls = 0;
    builds.onAvailable(() => {
      calls += 1;
    });
    await other.put('a/', 'x');
    await sleep(100);
    expect(calls).toBe(0);
    expect(await builds.claim(60)).toBeNull();
    expect((await other.claim(60))?.body).toBe('x');
  });

  it("uses Redis's clock when none is injected: a lease set now is running, not lapsed", async () => {
    const prefix = newPrefix();
    const q = await openQueue(prefix);
    await q.put('a/', 'x', { availableAfterMs: Date.now() + 60_000 });
    await q.put('b/', 'y');
    expect(await q.stats()).toEqual({ available: 1, running: 0, delayed: 1 });
    const item = await q.claim(60);
    expect(item?.body).toBe('y');
    expect(await q.stats()).toEqual({ available: 0, running: 1, delayed: 1 });
  });
});

describe('RedisQueue key layout', () => {
  it('joins ORCHESTRATOR_PREFIX with a slash, as the other stores do, whether or not it ends in one', async () => {
    const bare = `test/${randomUUID()}`;
    prefixes.push(bare);
    const q = await openQueue(bare);
    await q.put('a/', 'x');
    const client = testClient();
    try {
      const keys: string[] = [];
      let cursor = '0';
      do {
        const [next, batch] = await client.scan(cursor, 'MATCH', `${bare}*`, 'COUNT', 1000);
        cursor = next;
        keys.push(...batch);
      } while (cursor !== '0');
      expect(keys.length).toBeGreaterThan(0);
      for (const key of keys) expect(key.startsWith(`${bare}/queue/dockerfilebuild/`)).toBe(true);
    } finally {
      client.disconnect();
    }
  });
});

describe('RedisQueue claim cost', () => {
  let server: RedisServerChild;
  let stats: Redis;

  beforeAll(async () => {
    server = await RedisServerChild.start();
    stats = server.client();
  });

  afterAll(async () => {
    await stats.quit();
    await server.stop();
  });

  /** Redis commands run (scripts' inner commands included) per claim + put-back cycle. */
  async function commandsPerCycle(q: RedisQueue, cycles: number): Promise<number> {
    await sleep(20);
    await stats.config('RESETSTAT');
    for (let i = 0; i < cycles; i++) {
      const item = await q.claim(600);
      expect(item?.queueName).toBe('free/');
      await q.incomplete(item!, { retryAfterSeconds: 0, restoreRetry: true });
    }
    await sleep(20);
    const info = await stats.info('commandstats');
    let calls = 0;
    for (const [, name, n] of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) if (name !== 'info' && name !== 'config') calls += Number(n);
    return calls / cycles;
  }

  it('does the same work per claim with 10 or 4,000 waiting items (no scan)', async () => {
    const q = await openQueue(newPrefix(), {}, server.port);
    const later = Date.now() + 600_000;
    const waiting = async (n: number) => {
      // Items of a repository that is busy, and items in a retry delay: both must be skipped unseen.
      await Promise.all(Array.from({ length: n }, (_, i) => q.put('busy/', `b${i}`)));
      await Promise.all(Array.from({ length: n }, (_, i) => q.put(`later${i}/`, `l${i}`, { availableAfterMs: later })));
    };
    await waiting(5);
    expect((await q.claim(600))?.queueName).toBe('busy/');
    await q.put('free/', 'z');
    const few = await commandsPerCycle(q, 20);
    await waiting(2000);
    const many = await commandsPerCycle(q, 20);
    // Coalesced timer refreshes vary a little; a scan would add thousands.
    expect(many).toBeLessThan(few + 10);
  });
});

describe('RedisQueue during a Redis outage', () => {
  let server: RedisServerChild;

  beforeAll(async () => {
    server = await RedisServerChild.start();
  });

  afterAll(async () => {
    await server.stop();
  });

  it('rejects with a retryable error naming Redis, then recovers: operations work and listeners fire', async () => {
    const prefix = newPrefix();
    const a = await openQueue(prefix, {}, server.port);
    const b = await openQueue(prefix, {}, server.port);
    await a.put('a/', 'before');

    await server.stop();
    const started = Date.now();
    const err = await a.claim(60).then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(InfraError);
    expect((err as InfraError).retryable).toBe(true);
    expect((err as InfraError).message).toMatch(/Redis/);
    expect(Date.now() - started).toBeLessThan(6000);

    // Both managers' listeners are called once the subscription is back.
    const aBack = nextCall(a, 5000);
    const bBack = nextCall(b, 5000);
    await server.start(); // same port, empty (no persistence)
    await Promise.all([aBack, bBack]);

    const heard = nextCall(b);
    const id = await a.put('a/', 'after');
    await heard;
    expect((await b.claim(60))?.id).toBe(id);
  });
});
