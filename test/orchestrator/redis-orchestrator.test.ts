import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { KeyEvent, type KeyChange } from '../../src/orchestrator/orchestrator.js';
import { RedisKeyLayout } from '../../src/orchestrator/redis-key-layout.js';
import { RedisOrchestrator, type RedisOrchestratorOptions } from '../../src/orchestrator/redis-orchestrator.js';
import { silentLogger } from '../../src/util/logger.js';
import { cleanupPrefix, redisTestConfig, testClient, uniquePrefix } from '../helpers/redis.js';
import { orchestratorContract, recordChanges, until } from './orchestrator-contract.js';

orchestratorContract('RedisOrchestrator', async () => {
  const prefix = uniquePrefix();
  const orchestrator = new RedisOrchestrator(redisTestConfig(), { prefix, logger: silentLogger() });
  await orchestrator.ready();
  return {
    orchestrator,
    prefix,
    dispose: async () => {
      await orchestrator.close();
      await cleanupPrefix(prefix);
    },
  };
});

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('RedisOrchestrator on a shared Redis', () => {
  const orchestrators: RedisOrchestrator[] = [];
  const clients: Redis[] = [];
  const prefixes: string[] = [];

  function prefix(): string {
    const p = uniquePrefix();
    prefixes.push(p);
    return p;
  }

  async function orchestrator(p: string, opts: Partial<RedisOrchestratorOptions> = {}): Promise<RedisOrchestrator> {
    const orch = new RedisOrchestrator(redisTestConfig(), { prefix: p, logger: silentLogger(), ...opts });
    orchestrators.push(orch);
    await orch.ready();
    return orch;
  }

  function client(): Redis {
    const c = testClient();
    clients.push(c);
    return c;
  }

  async function serverMs(c: Redis): Promise<number> {
    const [s, us] = await c.time();
    return Number(s) * 1000 + Math.floor(Number(us) / 1000);
  }

  afterEach(async () => {
    await Promise.all(orchestrators.splice(0).map((o) => o.close()));
    for (const c of clients.splice(0)) c.disconnect();
    await Promise.all(prefixes.splice(0).map((p) => cleanupPrefix(p)));
  });

  it("writes Quay's key layout: main key +1 day, /expiring with the real TTL, a deadline in <P>/expiries", async () => {
    const p = prefix();
    const orch = await orchestrator(p);
    const c = client();
    const key = `${p}building/job-1`;

    const before = await serverMs(c);
    await orch.setKey(key, '{"a": 1}', { expirationSeconds: 30 });
    const after = await serverMs(c);

    expect(await c.get(key)).toBe('{"a": 1}');
    const mainTtl = await c.pttl(key);
    expect(mainTtl).toBeGreaterThan((30 + 86400) * 1000 - 2000);
    expect(mainTtl).toBeLessThanOrEqual((30 + 86400) * 1000);
    expect(await c.get(`${key}/expiring`)).toBe('');
    const expiringTtl = await c.pttl(`${key}/expiring`);
    expect(expiringTtl).toBeGreaterThan(28_000);
    expect(expiringTtl).toBeLessThanOrEqual(30_000);
    expect(await c.exists(`${key}/expired`)).toBe(0);
    const deadline = Number(await c.zscore(`${p}expiries`, key));
    expect(deadline).toBeGreaterThanOrEqual(before + 30_000);
    expect(deadline).toBeLessThanOrEqual(after + 30_000);

    // Overwrite without expiration: no TTL, no trigger, no deadline (the key no longer expires).
    await orch.setKey(key, 'plain', { overwrite: true });
    expect(await c.pttl(key)).toBe(-1);
    expect(await c.exists(`${key}/expiring`)).toBe(0);
    expect(await c.zscore(`${p}expiries`, key)).toBeNull();

    // A lock: Quay's 10000 s, main key 10000 s + 1 day.
    expect(await orch.lock(`${p}lock/job-1`)).toBe(true);
    expect(await c.pttl(`${p}lock/job-1/expiring`)).toBeGreaterThan(9_990_000);
    expect(await c.pttl(`${p}lock/job-1`)).toBeGreaterThan((10_000 + 86_400) * 1000 - 10_000);

    // Delete removes the key and its siblings.
    await orch.setKey(`${p}building/job-2`, 'v', { expirationSeconds: 30 });
    await orch.deleteKey(`${p}building/job-2`);
    expect(await c.exists(`${p}building/job-2`, `${p}building/job-2/expiring`, `${p}building/job-2/expired`)).toBe(0);
    expect(await c.zscore(`${p}expiries`, `${p}building/job-2`)).toBeNull();
  });

  it('after an expiry: the main key is gone, /expired holds the value for a day (Q8), the deadline is removed', async () => {
    const p = prefix();
    const orch = await orchestrator(p);
    const c = client();
    const { changes } = recordChanges(orch, p);
    const key = `${p}building/job`;
    await orch.setKey(key, 'last value', { expirationSeconds: 1 });
    await until(() => changes.some((ch) => ch.event === KeyEvent.EXPIRE), 3500, 'EXPIRE');

    expect(await c.exists(key, `${key}/expiring`)).toBe(0);
    expect(await c.get(`${key}/expired`)).toBe('last value');
    const markerTtl = await c.pttl(`${key}/expired`);
    expect(markerTtl).toBeGreaterThan(86_400_000 - 10_000);
    expect(markerTtl).toBeLessThanOrEqual(86_400_000);
    expect(await c.zcard(`${p}expiries`)).toBe(0);

    // getPrefixedKeys lists main keys only: not the marker, not /expiring, not the expiries set.
    await orch.setKey(`${p}building/live`, 'live', { expirationSeconds: 30 });
    expect(await orch.getPrefixedKeys(p)).toEqual(new Map([[`${p}building/live`, 'live']]));

    // Writing the key again clears the stale marker.
    await orch.setKey(key, 'again');
    expect(await c.exists(`${key}/expired`)).toBe(0);
  });

  it("publishes every change on <P>/orchestrator_events as Quay's JSON, EXPIRE included", async () => {
    const p = prefix();
    const orch = await orchestrator(p);
    const listener = client();
    const messages: string[] = [];
    listener.on('message', (_channel: string, message: string) => messages.push(message));
    await listener.subscribe(`${p}orchestrator_events`);

    const key = `${p}building/job`;
    const tricky = 'line\nq"uote\\back\ttab\u0001 é ✓';
    await orch.setKey(key, '{"a": 1}', { expirationSeconds: 1 });
    await orch.setKey(key, tricky, { overwrite: true, expirationSeconds: 1 });
    await orch.setKey(`${p}cancel/job`, 'job');
    await orch.deleteKey(`${p}cancel/job`);
    await until(() => messages.length >= 5, 3500, 'five messages');

    expect(messages[0]).toBe(`{"event": 1, "key": "${p}building/job", "value": "{\\"a\\": 1}"}`);
    expect(messages[1]).toBe(`{"event": 2, "key": "${p}building/job", "value": "line\\nq\\"uote\\\\back\\ttab\\u0001 é ✓"}`);
    expect(messages.slice(1).map((m) => JSON.parse(m) as unknown)).toEqual([
      { event: KeyEvent.SET, key, value: tricky },
      { event: KeyEvent.CREATE, key: `${p}cancel/job`, value: 'job' },
      { event: KeyEvent.DELETE, key: `${p}cancel/job`, value: 'job' },
      { event: KeyEvent.EXPIRE, key, value: tricky },
    ]);
  });

  it('another instance on the same prefix hears CREATE, SET and DELETE, but not the EXPIRE it did not handle', async () => {
    const p = prefix();
    const writer = await orchestrator(p, { sweepIntervalMs: 60_000 });
    const reader = await orchestrator(p, { sweepIntervalMs: 60_000 });
    const heard = recordChanges(reader, `${p}building/`);
    const own = recordChanges(writer, `${p}building/`);
    const key = `${p}building/job`;
    await writer.setKey(key, 'v1');
    await writer.setKey(key, 'v2', { overwrite: true });
    await writer.deleteKey(key);
    await until(() => heard.changes.length >= 3 && own.changes.length >= 3, 3000, 'events on both');
    const expected: KeyChange[] = [
      { event: KeyEvent.CREATE, key, value: 'v1' },
      { event: KeyEvent.SET, key, value: 'v2' },
      { event: KeyEvent.DELETE, key, value: 'v2' },
    ];
    expect(heard.changes).toEqual(expected);
    expect(own.changes).toEqual(expected);
  });

  it('two instances on one prefix: each expiry is delivered exactly once across them', async () => {
    const p = prefix();
    // One relies on notifications, the other also sweeps fast, so handler and sweep race too.
    const a = await orchestrator(p, { sweepIntervalMs: 60_000 });
    const b = await orchestrator(p, { sweepIntervalMs: 25 });
    const fromA = recordChanges(a, p);
    const fromB = recordChanges(b, p);
    const expires = () => [...fromA.changes, ...fromB.changes].filter((c) => c.event === KeyEvent.EXPIRE);

    const keys = Array.from({ length: 30 }, (_, i) => `${p}building/job-${i}`);
    await Promise.all(keys.map((key, i) => (i % 2 ? a : b).setKey(key, `value-${i}`, { expirationSeconds: 1 })));
    await until(() => expires().length >= keys.length, 4000, 'all expiries');
    await sleep(500);

    const delivered = expires();
    expect(delivered).toHaveLength(keys.length);
    expect(new Set(delivered.map((c) => c.key))).toEqual(new Set(keys));
    for (const c of delivered) expect(c.value).toBe(`value-${keys.indexOf(c.key)}`);
  });

  it('an instance on another prefix sees none of our events or expiries (Q9)', async () => {
    const p = prefix();
    const near = p.slice(0, -2); // "test/<hex minus one char>": a string prefix of ours, another installation
    prefixes.push(near);
    const ours = await orchestrator(p);
    const theirs = await orchestrator(near, { sweepIntervalMs: 25 });
    const ourChanges = recordChanges(ours, p);
    const theirChanges = recordChanges(theirs, '');

    await ours.setKey(`${p}building/job`, 'v', { expirationSeconds: 1 });
    await until(() => ourChanges.changes.some((c) => c.event === KeyEvent.EXPIRE), 3500, 'our EXPIRE');
    await theirs.setKey(`${near}/building/theirs`, 't');
    await until(() => theirChanges.changes.length >= 1, 3000, 'their own CREATE');
    expect(theirChanges.changes).toEqual([{ event: KeyEvent.CREATE, key: `${near}/building/theirs`, value: 't' }]);
    expect(ourChanges.changes.map((c) => c.event)).toEqual([KeyEvent.CREATE, KeyEvent.EXPIRE]);
  });

  it('the keyspace pattern matches our prefix literally, glob characters included', async () => {
    const p = prefix();
    const globby = `${p}a*[b]?/`;
    const layout = new RedisKeyLayout(globby);
    const listener = client();
    const channels: string[] = [];
    listener.on('pmessage', (_pattern: string, channel: string) => channels.push(channel));
    await listener.psubscribe(layout.keyspacePattern(0));
    const writer = await orchestrator(globby);
    const c = client();
    // A key the unescaped pattern would also match expires first, then ours (only `expired` is enabled).
    await c.set(`${p}aXb!/k/expiring`, '', 'PX', 50);
    await writer.setKey(`${globby}k`, 'v', { expirationSeconds: 1 });
    await until(() => channels.length >= 1, 3500, 'keyspace event');
    await sleep(100);
    expect(new Set(channels)).toEqual(new Set([`__keyspace@0__:${globby}k/expiring`]));
  });

  it('an expiry that passed while no instance was running is delivered by the next one to start (sweep)', async () => {
    const p = prefix();
    const first = await orchestrator(p);
    await first.setKey(`${p}building/orphan`, 'orphaned value', { expirationSeconds: 1 });
    await first.close();
    await sleep(1500); // the expiry passes with nobody subscribed

    const second = new RedisOrchestrator(redisTestConfig(), { prefix: p, logger: silentLogger(), sweepIntervalMs: 100 });
    orchestrators.push(second);
    const { changes } = recordChanges(second, p);
    await until(() => changes.length >= 1, 3000, 'EXPIRE from the sweep');
    expect(changes).toEqual([{ event: KeyEvent.EXPIRE, key: `${p}building/orphan`, value: 'orphaned value' }]);
  });
});
