import { randomBytes, randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { LogEntry } from '../../src/builds/build-record.js';
import { RedisBuildStore, type RedisBuildStoreOptions } from '../../src/builds/redis-build-store.js';
import { InfraError } from '../../src/errors/buildman-error.js';
import { buildStoreContract, bytes, entry, eventually, record, requestError } from './build-store-contract.js';
import { redisTestConfig, testClient, uniquePrefix } from '../helpers/redis.js';
import { blackhole, closedPort, deleteMatching, keysMatching, localRedisConfig, redisProxy } from './redis-test-support.js';

let raw: Redis;
beforeAll(() => {
  raw = testClient();
});
afterAll(async () => {
  await raw.quit();
});

buildStoreContract('RedisBuildStore', async ({ now, idPrefix }) => {
  const prefix = uniquePrefix();
  return {
    store: new RedisBuildStore(redisTestConfig(), { prefix, now }),
    cleanup: () => deleteMatching(raw, `${prefix}*`, `builds/${idPrefix}*`),
  };
});

describe('RedisBuildStore in Redis', () => {
  const open: RedisBuildStore[] = [];
  const prefixes: string[] = [];
  const ids: string[] = [];

  /** A store on a fresh prefix (or the given one, to act as a second instance). */
  function store(opts: Partial<RedisBuildStoreOptions> = {}, config = redisTestConfig()): RedisBuildStore {
    const prefix = opts.prefix ?? uniquePrefix();
    prefixes.push(prefix);
    const s = new RedisBuildStore(config, { ...opts, prefix });
    open.push(s);
    return s;
  }
  const buildId = () => {
    const id = randomUUID();
    ids.push(id);
    return id;
  };

  afterEach(async () => {
    await Promise.all(open.splice(0).map((s) => s.close()));
    await deleteMatching(raw, ...prefixes.splice(0).map((p) => `${p}*`), ...ids.splice(0).map((id) => `builds/${id}/logs`));
  });

  describe('logs in Quay’s layout', () => {
    it('writes each entry as one JSON element of the unprefixed list builds/<uuid>/logs', async () => {
      const s = store({ prefix: 'buildman/production/' });
      const id = buildId();
      await s.appendLogs(id, [
        { message: 'pulling', type: 'phase', data: { registry_url: 'quay.io', datetime: '2024-05-01 10:00:00.123456' } },
        { message: 'Step 1/3 : FROM alpine', type: 'command', data: { datetime: '2024-05-01 10:00:01.000000' } },
        { message: 'fetch http://dl-cdn.alpinelinux.org/…\n', data: { datetime: '2024-05-01 10:00:02.000000' } },
      ]);
      expect(await raw.type(`builds/${id}/logs`)).toBe('list');
      expect(await raw.lrange(`builds/${id}/logs`, 0, -1)).toEqual([
        '{"message":"pulling","type":"phase","data":{"registry_url":"quay.io","datetime":"2024-05-01 10:00:00.123456"}}',
        '{"message":"Step 1/3 : FROM alpine","type":"command","data":{"datetime":"2024-05-01 10:00:01.000000"}}',
        '{"message":"fetch http://dl-cdn.alpinelinux.org/…\\n","data":{"datetime":"2024-05-01 10:00:02.000000"}}',
      ]);
      expect(await keysMatching(raw, `buildman/production/*${id}*`)).toEqual([]);
    });

    it('gives the list its 7-day TTL from the very first entry, renewed on each append', async () => {
      const s = store();
      const id = buildId();
      await s.appendLogs(id, [entry('only one')]);
      const ttl = await raw.ttl(`builds/${id}/logs`);
      expect(ttl).toBeGreaterThan(7 * 86_400 - 5);
      expect(ttl).toBeLessThanOrEqual(7 * 86_400);

      await raw.expire(`builds/${id}/logs`, 100);
      await s.appendLogs(id, [entry('another')]);
      expect(await raw.ttl(`builds/${id}/logs`)).toBeGreaterThan(7 * 86_400 - 5);
    });

    it('honours logRetentionSeconds', async () => {
      const s = store({ logRetentionSeconds: 3600 });
      const id = buildId();
      await s.appendLogs(id, [entry('x')]);
      expect(await raw.ttl(`builds/${id}/logs`)).toBeGreaterThan(3590);
      expect(await raw.ttl(`builds/${id}/logs`)).toBeLessThanOrEqual(3600);
    });

    it('reads entries Quay wrote (Python json.dumps spacing) and tolerates a non-JSON element', async () => {
      const s = store();
      const id = buildId();
      await raw.rpush(`builds/${id}/logs`, '{"message": "unpacking", "type": "phase", "data": {"datetime": "2024-05-01 10:00:00"}}', 'not json');
      expect(await s.readLogs(id, 0)).toEqual({
        total: 2,
        logs: [{ message: 'unpacking', type: 'phase', data: { datetime: '2024-05-01 10:00:00' } }, { message: 'not json' }],
      });
      expect(await s.appendLogs(id, [entry('ours')])).toBe(2);
    });

    it('keeps order under 1,000 concurrent appends to one build, in a few batches', async () => {
      const s = store();
      const id = buildId();
      // Count the batches as Redis publishes them.
      const listener = testClient();
      let batches = 0;
      listener.on('message', () => (batches += 1));
      await listener.subscribe(s.keys.logChannel(id));
      const watched: number[] = [];
      const off = s.watchLogs(id, (e, i) => {
        expect(e.message).toBe(String(i));
        watched.push(i);
      });

      const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => s.appendLogs(id, [entry(String(i))])));
      expect(results).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      const { total, logs } = await s.readLogs(id, 0);
      expect(total).toBe(1000);
      expect(logs.map((e) => e.message)).toEqual(Array.from({ length: 1000 }, (_, i) => String(i)));
      await eventually(() => expect(watched).toHaveLength(1000));
      expect(watched).toEqual(Array.from({ length: 1000 }, (_, i) => i));
      expect(batches).toBeLessThanOrEqual(5);
      off();
      await listener.quit();
    });

    it('interleaves concurrent appends to 50 builds without mixing them up', async () => {
      const s = store();
      const builds = Array.from({ length: 50 }, buildId);
      await Promise.all(builds.flatMap((id) => Array.from({ length: 40 }, (_, i) => s.appendLogs(id, [entry(`${id}:${i}`)]))));
      for (const id of builds) {
        expect((await s.readLogs(id, 0)).logs.map((e) => e.message)).toEqual(Array.from({ length: 40 }, (_, i) => `${id}:${i}`));
      }
    });

    it('appends a batch of 20,000 entries in one call (more than a Lua unpack can take at once)', async () => {
      const s = store();
      const id = buildId();
      const many = Array.from({ length: 20_000 }, (_, i) => ({ message: String(i) }) as LogEntry);
      expect(await s.appendLogs(id, many)).toBe(19_999);
      expect(await raw.llen(`builds/${id}/logs`)).toBe(20_000);
      expect(await raw.lindex(`builds/${id}/logs`, 12_345)).toBe('{"message":"12345"}');
    });

    it('a build whose key is broken fails alone; the other builds in the same flush land', async () => {
      const s = store();
      const broken = buildId();
      const fine = buildId();
      await raw.set(`builds/${broken}/logs`, 'not a list');
      const [a, b] = await Promise.allSettled([s.appendLogs(broken, [entry('x')]), s.appendLogs(fine, [entry('y')])]);
      expect(a.status).toBe('rejected');
      expect(String((a as PromiseRejectedResult).reason.message)).toContain('WRONGTYPE');
      expect(b).toEqual({ status: 'fulfilled', value: 0 });
    });

    it('close() sends what the write-behind still holds', async () => {
      const s = store();
      const id = buildId();
      const pending = Promise.all(Array.from({ length: 10 }, (_, i) => s.appendLogs(id, [entry(String(i))])));
      await s.close();
      await pending;
      expect(await raw.llen(`builds/${id}/logs`)).toBe(10);
    });
  });

  describe('across instances', () => {
    it('a watcher on instance B sees, in order, what instance A appends', async () => {
      const prefix = uniquePrefix();
      const a = store({ prefix });
      const b = store({ prefix });
      const id = buildId();
      await a.appendLogs(id, [entry('before')]);

      const seen: Array<[string, number]> = [];
      const off = b.watchLogs(id, (e, i) => seen.push([e.message, i]));
      // The follower's pattern: watch, then read the backlog (which waits for the subscription).
      expect((await b.readLogs(id, 0)).total).toBe(1);

      for (let i = 0; i < 20; i++) void a.appendLogs(id, [entry(`a${i}`)]);
      await a.appendLogs(id, [entry('a20'), entry('a21')]);
      await eventually(() => expect(seen).toHaveLength(22));
      expect(seen).toEqual(Array.from({ length: 22 }, (_, i) => [`a${i}`, i + 1]));

      off();
      await a.appendLogs(id, [entry('after')]);
      await new Promise((r) => setTimeout(r, 50));
      expect(seen).toHaveLength(22);
    });

    it('subscribes a build’s channel on its first watcher and unsubscribes on its last', async () => {
      const s = store();
      const id = buildId();
      const channel = s.keys.logChannel(id);
      const subscribers = async () => Number(((await raw.pubsub('NUMSUB', channel)) as [string, number])[1]);

      const off1 = s.watchLogs(id, () => undefined);
      const off2 = s.watchLogs(id, () => undefined);
      await s.readLogs(id, 0);
      expect(await subscribers()).toBe(1);
      off1();
      await new Promise((r) => setTimeout(r, 30));
      expect(await subscribers()).toBe(1);
      off2();
      await eventually(async () => expect(await subscribers()).toBe(0));
      s.watchLogs(id, () => undefined);
      await eventually(async () => expect(await subscribers()).toBe(1));
    });

    it('shares records: created on A, updated on B, listed on both', async () => {
      const prefix = uniquePrefix();
      const a = store({ prefix });
      const b = store({ prefix, now: () => 42 });
      await a.create(record('x1', 10));
      expect((await requestError(b.create(record('x1', 20)))).status).toBe(409);
      await b.update('x1', { phase: 'building' });
      expect(await a.get('x1')).toEqual({ ...record('x1', 10), phase: 'building', updatedAt: 42 });
      expect((await a.list()).map((r) => r.id)).toEqual(['x1']);
      expect(await store().get('x1')).toBeUndefined(); // another prefix is another installation
    });

    it('an upload saved on A opens on B; an oversized one leaves nothing for anyone', async () => {
      const prefix = uniquePrefix();
      const a = store({ prefix });
      const b = store({ prefix });
      const data = randomBytes(1_500_000);
      expect(await a.saveContext('c1', Readable.from([data]), 2_000_000)).toBe(data.length);
      expect((await buffer((await b.openContext('c1'))!)).equals(data)).toBe(true);

      const err = await requestError(a.saveContext('c2', bytes(3 * 1024 * 1024), 2_000_000));
      expect(err.status).toBe(413);
      expect(err.message).toContain('BUILDMAN_MAX_CONTEXT_BYTES');
      expect(await b.openContext('c2')).toBeUndefined();
      expect(await keysMatching(raw, `${prefix}build_context/c2*`)).toEqual([]);

      await b.deleteContext('c1');
      expect(await a.openContext('c1')).toBeUndefined();
    });
  });

  describe('key layout', () => {
    it('keeps a record as a hash under the prefix, indexed by createdAt', async () => {
      const s = store();
      const prefix = prefixes.at(-1)!;
      await s.create(record('r1', 1234, { pullCredentials: { username: 'u', password: 'p' } }));
      expect(await raw.type(`${prefix}build/r1`)).toBe('hash');
      expect(await raw.hget(`${prefix}build/r1`, 'tags')).toBe('["latest"]');
      const [member, score] = await raw.zrange(`${prefix}build_index`, '0', '-1', 'WITHSCORES');
      expect(member).toMatch(/^\d{16}:r1$/);
      expect(score).toBe('1234');
      expect(await raw.ttl(`${prefix}build/r1`)).toBe(-1);
      // Property order is the declaration order, whatever order Redis returns the fields in.
      expect(Object.keys((await s.get('r1'))!)).toEqual([
        'id', 'repository', 'tags', 'dockerfilePath', 'context', 'source', 'pullCredentials', 'phase', 'state', 'createdAt', 'updatedAt', 'attempt',
      ]);
    });

    it('keeps a context as a chunked list with a 1-day TTL, and no upload key once saved', async () => {
      const s = store();
      const prefix = prefixes.at(-1)!;
      await s.saveContext('c1', bytes(2_500_000), 3_000_000);
      expect(await keysMatching(raw, `${prefix}*`)).toEqual([`${prefix}build_context/c1`]);
      expect(await raw.llen(`${prefix}build_context/c1`)).toBe(3);
      expect(await raw.ttl(`${prefix}build_context/c1`)).toBeGreaterThan(86_400 - 5);
    });

    it('gives records a TTL with recordRetentionSeconds, and lists past records that expired', async () => {
      const s = store({ recordRetentionSeconds: 600 });
      const prefix = prefixes.at(-1)!;
      await s.create(record('gone', 1));
      await s.create(record('kept', 2));
      expect(await raw.ttl(`${prefix}build/kept`)).toBeGreaterThan(590);
      await raw.del(`${prefix}build/gone`); // as its TTL would
      expect((await s.list()).map((r) => r.id)).toEqual(['kept']);
      expect(await raw.zcard(`${prefix}build_index`)).toBe(1);

      // Created again after expiry: listed once, at its new place.
      await s.create(record('gone', 3));
      await raw.zadd(`${prefix}build_index`, 0, '0000000000000000:gone'); // a stale member
      expect((await s.list()).map((r) => r.id)).toEqual(['gone', 'kept']);
      expect((await s.list({ limit: 1 })).map((r) => r.id)).toEqual(['gone']);
    });
  });

  describe('when Redis is unreachable', () => {
    it('never crashes, and every operation fails with REDIS_UNAVAILABLE within a few seconds', async () => {
      const s = store({}, localRedisConfig(await closedPort()));
      const off = s.watchLogs('w', () => undefined); // must not throw
      const started = Date.now();
      const results = await Promise.allSettled([
        s.create(record('a', 1)),
        s.get('a'),
        s.list(),
        s.update('a', { phase: 'error' }),
        s.appendLogs('a', [entry('x')]),
        s.readLogs('a', 0),
        s.saveContext('a', bytes(10), 100),
        s.openContext('a'),
        s.deleteContext('a'),
      ]);
      expect(Date.now() - started).toBeLessThan(4000);
      for (const r of results) {
        expect(r.status).toBe('rejected');
        const err = (r as PromiseRejectedResult).reason as InfraError;
        expect(err).toBeInstanceOf(InfraError);
        expect(err.code).toBe('REDIS_UNAVAILABLE');
        expect(err.retryable).toBe(true);
      }
      off();
      const closing = Date.now();
      await s.close();
      expect(Date.now() - closing).toBeLessThan(500);
    });

    it('gives up on a Redis that accepts connections and never answers, after timeoutMs', async () => {
      const hole = await blackhole();
      try {
        const s = store({ timeoutMs: 400 }, localRedisConfig(hole.port));
        s.watchLogs('a', () => undefined); // a SUBSCRIBE that is never confirmed must not hold appends forever
        const started = Date.now();
        const err = (await s.get('a').catch((e: unknown) => e)) as InfraError;
        expect(err.code).toBe('REDIS_UNAVAILABLE');
        expect(err.message).toContain('no reply within 400 ms');
        expect(Date.now() - started).toBeLessThan(1500);
        await expect(s.appendLogs('a', [entry('x')])).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
        const closing = Date.now();
        await s.close();
        expect(Date.now() - closing).toBeLessThan(2000);
      } finally {
        await hole.close();
      }
    });

    it('recovers after an outage: appends work again and watchers are subscribed again', async () => {
      const proxy = await redisProxy();
      try {
        const prefix = uniquePrefix();
        const viaProxy = store({ prefix, timeoutMs: 1000 }, localRedisConfig(proxy.port));
        const direct = store({ prefix });
        const id = buildId();
        const seen: string[] = [];
        viaProxy.watchLogs(id, (e) => seen.push(e.message));
        await viaProxy.readLogs(id, 0);

        proxy.cut();
        await expect(viaProxy.appendLogs(id, [entry('lost')])).rejects.toMatchObject({ code: 'REDIS_UNAVAILABLE' });
        proxy.restore();

        // The watcher's connection comes back and subscribes again: entries another instance
        // appends reach it (probing, since nothing says when the reconnect happens).
        let probes = 0;
        await eventually(async () => {
          await direct.appendLogs(id, [entry(`probe${probes++}`)]);
          expect(seen.length).toBeGreaterThan(0);
        }, 8000);
        await eventually(() => expect(viaProxy.appendLogs(id, [entry('back')])).resolves.toBeGreaterThan(0), 8000);
        await eventually(() => expect(seen.at(-1)).toBe('back'));
      } finally {
        await proxy.close();
      }
    });
  });
});
