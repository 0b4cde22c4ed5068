import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BuildRecord, LogEntry } from '../../src/builds/build-record.js';
import type { BuildStore } from '../../src/builds/build-store.js';
import { RequestError } from '../../src/errors/buildman-error.js';

/** What a store under test gets: its clock, and a prefix every build id in the test starts with. */
export interface ContractContext {
  now: () => number;
  /** Unique per test, so stores whose keys are global (Quay's `builds/<uuid>/logs`) do not collide. */
  idPrefix: string;
}

export interface StoreUnderTest {
  store: BuildStore;
  /** Removes whatever the test left behind (after the store is closed). */
  cleanup?: () => Promise<void>;
}

export function record(id: string, createdAt: number, over: Partial<BuildRecord> = {}): BuildRecord {
  return {
    id,
    repository: 'ns/repo',
    tags: ['latest'],
    dockerfilePath: 'Dockerfile',
    context: '/',
    source: { kind: 'url', url: 'https://example.com/ctx.tar' },
    phase: 'waiting',
    state: 'queued',
    createdAt,
    updatedAt: createdAt,
    attempt: 0,
    ...over,
  };
}

export const entry = (message: string, type?: LogEntry['type']): LogEntry => ({
  message,
  ...(type ? { type } : {}),
  data: { datetime: '2024-01-01 00:00:00.000000' },
});

/** A stream of `total` bytes in chunks of `chunk`. */
export function bytes(total: number, chunk = 64 * 1024): Readable {
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(chunk, left);
      left -= n;
      this.push(Buffer.alloc(n, 0x61));
    },
  });
}

export async function requestError(p: Promise<unknown>): Promise<RequestError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RequestError);
  return err as RequestError;
}

/**
 * Retries `check` until it passes or `timeoutMs` runs out. Watchers of a shared store are told
 * through Redis pub/sub, after the append has resolved; an in-process store passes at once.
 */
export async function eventually(check: () => void | Promise<void>, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await check();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 5));
    }
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The behaviour every BuildStore has: records, Quay-shaped logs with watchers, capped contexts. */
export function buildStoreContract(name: string, make: (ctx: ContractContext) => Promise<StoreUnderTest>): void {
  describe(`BuildStore contract: ${name}`, () => {
    let now: number;
    let store: BuildStore;
    let under: StoreUnderTest;
    /** Build id `name`, unique to this test. */
    let id: (name: string) => string;

    beforeEach(async () => {
      now = 1_700_000_000_000;
      const idPrefix = `t${randomBytes(5).toString('hex')}-`;
      id = (n) => `${idPrefix}${n}`;
      under = await make({ now: () => now, idPrefix });
      store = under.store;
    });
    afterEach(async () => {
      await store.close();
      await under.cleanup?.();
    });

    describe('records', () => {
      it('creates, gets, and refuses a duplicate id', async () => {
        await store.create(record(id('b1'), 1));
        expect(await store.get(id('b1'))).toEqual(record(id('b1'), 1));
        expect(await store.get(id('nope'))).toBeUndefined();
        const dup = await requestError(store.create(record(id('b1'), 2)));
        expect(dup.status).toBe(409);
        expect(dup.field).toBe('id');
        expect((await store.get(id('b1')))?.createdAt).toBe(1);
      });

      it('hands out copies: mutating inputs or results does not change the store', async () => {
        const input = record(id('b1'), 1, { pullCredentials: { username: 'u', password: 'p' } });
        await store.create(input);
        input.phase = 'error';
        input.tags.push('mutated');
        input.pullCredentials!.password = 'changed';

        const got = await store.get(id('b1'));
        expect(got?.phase).toBe('waiting');
        expect(got?.tags).toEqual(['latest']);
        expect(got?.pullCredentials?.password).toBe('p');

        got!.tags.push('again');
        (await store.list())[0].tags.push('and again');
        const updated = await store.update(id('b1'), { phase: 'building' });
        updated!.tags.push('once more');
        expect((await store.get(id('b1')))?.tags).toEqual(['latest']);
      });

      it('keeps every field as given: nested objects, empty arrays, large numbers, optional fields', async () => {
        const full = record(id('b1'), 1_700_000_000_123, {
          tags: [],
          source: { kind: 'git', url: 'https://example.com/repo.git', sha: 'a'.repeat(40) },
          pullCredentials: { username: 'u', password: 'p', registry: 'quay.io' },
          executor: 'popen',
          executionId: 'exec-1',
          queueItemId: 'q-1',
          reason: 'x'.repeat(200),
          attempt: 3,
        });
        await store.create(full);
        expect(await store.get(id('b1'))).toEqual(full);
      });

      it('lists newest first, with a limit', async () => {
        await store.create(record(id('old'), 100));
        await store.create(record(id('new'), 300));
        await store.create(record(id('mid'), 200));
        await store.create(record(id('new2'), 300));
        expect((await store.list()).map((r) => r.id)).toEqual([id('new2'), id('new'), id('mid'), id('old')]);
        expect((await store.list({ limit: 2 })).map((r) => r.id)).toEqual([id('new2'), id('new')]);
        expect(await store.list({ limit: 0 })).toEqual([]);
      });

      it('lists builds created in the same millisecond latest first, whatever their ids', async () => {
        for (const n of ['c', 'a', 'd', 'b']) await store.create(record(id(n), 500));
        expect((await store.list()).map((r) => r.id)).toEqual(['b', 'd', 'a', 'c'].map(id));
      });

      it('update merges, keeps the id, and sets updatedAt from its own clock', async () => {
        await store.create(record(id('b1'), 1));
        now += 5_000;
        const updated = await store.update(id('b1'), { phase: 'building', state: 'running.building', attempt: 1, id: 'other', updatedAt: 42 });
        expect(updated).toMatchObject({ id: id('b1'), phase: 'building', state: 'running.building', attempt: 1, repository: 'ns/repo', updatedAt: now });
        expect(await store.get(id('b1'))).toEqual(updated);
        expect(await store.get('other')).toBeUndefined();
        expect(await store.update(id('missing'), { phase: 'error' })).toBeUndefined();
        expect(await store.get(id('missing'))).toBeUndefined();
      });

      it('update with an undefined field clears it, and a new createdAt moves the build in the list', async () => {
        await store.create(record(id('a'), 100, { reason: 'first try failed' }));
        await store.create(record(id('b'), 200));
        const cleared = await store.update(id('a'), { reason: undefined, createdAt: 300 });
        expect(cleared?.reason).toBeUndefined();
        expect((await store.get(id('a')))?.reason).toBeUndefined();
        expect((await store.list()).map((r) => r.id)).toEqual([id('a'), id('b')]);
      });

      it('merges concurrent updates to different fields, losing none', async () => {
        await store.create(record(id('b1'), 1));
        await Promise.all([
          store.update(id('b1'), { phase: 'building' }),
          store.update(id('b1'), { executor: 'popen' }),
          store.update(id('b1'), { executionId: 'e1' }),
          store.update(id('b1'), { attempt: 2 }),
        ]);
        expect(await store.get(id('b1'))).toMatchObject({ phase: 'building', executor: 'popen', executionId: 'e1', attempt: 2 });
      });
    });

    describe('logs', () => {
      it('appends in Quay’s shape, returning length − 1, and reads from an offset with the total', async () => {
        const b1 = id('b1');
        expect(await store.appendLogs(b1, [entry('unpacking', 'phase')])).toBe(0);
        expect(await store.appendLogs(b1, [entry('Step 1/2 : FROM alpine', 'command'), entry('pulling')])).toBe(2);
        expect(await store.readLogs(b1, 0)).toEqual({
          total: 3,
          logs: [entry('unpacking', 'phase'), entry('Step 1/2 : FROM alpine', 'command'), entry('pulling')],
        });
        expect(await store.readLogs(b1, 2)).toEqual({ total: 3, logs: [entry('pulling')] });
        expect(await store.readLogs(b1, 3)).toEqual({ total: 3, logs: [] });
        expect(await store.readLogs(b1, 99)).toEqual({ total: 3, logs: [] });
        expect(await store.readLogs(b1, -5)).toEqual({ total: 3, logs: (await store.readLogs(b1, 0)).logs });
        expect(await store.readLogs(id('none'), 0)).toEqual({ total: 0, logs: [] });
      });

      it('an empty append changes nothing and returns length − 1', async () => {
        expect(await store.appendLogs(id('b1'), [])).toBe(-1);
        await store.appendLogs(id('b1'), [entry('a'), entry('b')]);
        expect(await store.appendLogs(id('b1'), [])).toBe(1);
        expect((await store.readLogs(id('b1'), 0)).total).toBe(2);
      });

      it('keeps log entries per build and as copies', async () => {
        const e = entry('hello');
        await store.appendLogs(id('a'), [e]);
        await store.appendLogs(id('b'), [entry('other')]);
        e.message = 'changed';
        const read = await store.readLogs(id('a'), 0);
        read.logs[0].message = 'changed too';
        expect((await store.readLogs(id('a'), 0)).logs).toEqual([entry('hello')]);
        expect((await store.readLogs(id('b'), 0)).total).toBe(1);
      });

      it('concurrent appends each get the index of their own last entry, in call order', async () => {
        const results = await Promise.all(
          Array.from({ length: 50 }, (_, i) => store.appendLogs(id('b1'), i % 5 === 0 ? [entry(`${i}a`), entry(`${i}b`)] : [entry(`${i}`)])),
        );
        const expected: string[] = [];
        const ends: number[] = [];
        for (let i = 0; i < 50; i++) {
          if (i % 5 === 0) expected.push(`${i}a`, `${i}b`);
          else expected.push(`${i}`);
          ends.push(expected.length - 1);
        }
        expect(results).toEqual(ends);
        expect((await store.readLogs(id('b1'), 0)).logs.map((e) => e.message)).toEqual(expected);
      });

      it('tells watchers each entry appended after they subscribed, with its index, until they unsubscribe', async () => {
        await store.appendLogs(id('b1'), [entry('before')]);
        const seen: Array<[string, number]> = [];
        const other: string[] = [];
        const off = store.watchLogs(id('b1'), (e, i) => seen.push([e.message, i]));
        const offOther = store.watchLogs(id('b2'), (e) => other.push(e.message));

        await store.appendLogs(id('b1'), [entry('one'), entry('two')]);
        await eventually(() =>
          expect(seen).toEqual([
            ['one', 1],
            ['two', 2],
          ]),
        );
        off();
        await store.appendLogs(id('b1'), [entry('three')]);
        await sleep(50);
        expect(seen).toHaveLength(2);
        expect(other).toEqual([]);
        offOther();
        off(); // a second call is harmless
      });

      it('a watcher that reads the backlog right after subscribing misses nothing and sees nothing twice', async () => {
        const b1 = id('b1');
        await store.appendLogs(b1, [entry('0'), entry('1')]);
        const seen = new Map<number, string>();
        const off = store.watchLogs(b1, (e, i) => seen.set(i, e.message));
        const writing = (async () => {
          for (let i = 2; i < 40; i++) await store.appendLogs(b1, [entry(String(i))]);
        })();
        const backlog = await store.readLogs(b1, 0);
        backlog.logs.forEach((e, i) => seen.set(i, e.message));
        await writing;
        await eventually(() => expect([...seen.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 40 }, (_, i) => i)));
        for (const [i, message] of seen) expect(message).toBe(String(i));
        off();
      });

      it('serves many followers without a max-listener warning, and survives a throwing one', async () => {
        const warnings: unknown[] = [];
        const onWarning = (w: unknown) => warnings.push(w);
        process.on('warning', onWarning);
        try {
          let calls = 0;
          const offThrower = store.watchLogs(id('b1'), () => {
            throw new Error('follower bug');
          });
          const offs = Array.from({ length: 200 }, () => store.watchLogs(id('b1'), () => (calls += 1)));
          expect(await store.appendLogs(id('b1'), [entry('x')])).toBe(0);
          await eventually(() => expect(calls).toBe(200));
          offs.forEach((off) => off());
          offThrower();
          await new Promise((r) => setImmediate(r));
          expect(warnings).toEqual([]);
        } finally {
          process.off('warning', onWarning);
        }
      });
    });

    describe('contexts', () => {
      it('saves a context, returns its size, opens and deletes it', async () => {
        const size = await store.saveContext(id('b1'), bytes(300_000), 1_000_000);
        expect(size).toBe(300_000);
        const stream = await store.openContext(id('b1'));
        expect(stream).toBeDefined();
        expect((await buffer(stream!)).equals(Buffer.alloc(300_000, 0x61))).toBe(true);

        await store.deleteContext(id('b1'));
        expect(await store.openContext(id('b1'))).toBeUndefined();
        await store.deleteContext(id('b1')); // deleting twice is fine
      });

      it('keeps the exact bytes of a context larger than one storage chunk', async () => {
        const data = randomBytes(2_500_000);
        const parts = [data.subarray(0, 1), data.subarray(1, 70_001), data.subarray(70_001)];
        expect(await store.saveContext(id('b1'), Readable.from(parts), 3_000_000)).toBe(data.length);
        expect((await buffer((await store.openContext(id('b1')))!)).equals(data)).toBe(true);
      });

      it('saves an empty context as an empty archive, and a second save replaces the first', async () => {
        expect(await store.saveContext(id('b1'), Readable.from([]), 100)).toBe(0);
        expect((await buffer((await store.openContext(id('b1')))!)).length).toBe(0);
        await store.saveContext(id('b1'), bytes(10), 100);
        expect((await buffer((await store.openContext(id('b1')))!)).length).toBe(10);
      });

      it('accepts exactly maxBytes', async () => {
        expect(await store.saveContext(id('b1'), bytes(1000, 100), 1000)).toBe(1000);
      });

      it('aborts past maxBytes with a 413 naming the limit and the config key, keeping nothing', async () => {
        const err = await requestError(store.saveContext(id('b1'), bytes(5 * 1024 * 1024), 1024 * 1024));
        expect(err.status).toBe(413);
        expect(err.message).toContain('1048576');
        expect(err.message).toContain('BUILDMAN_MAX_CONTEXT_BYTES');
        expect(await store.openContext(id('b1'))).toBeUndefined();
      });

      it('keeps nothing when the upload itself fails', async () => {
        let sent = 0;
        const broken = new Readable({
          read() {
            if (sent++ < 3) this.push(Buffer.alloc(1024));
            else this.destroy(new Error('client went away'));
          },
        });
        await expect(store.saveContext(id('b1'), broken, 1_000_000)).rejects.toThrow('client went away');
        expect(await store.openContext(id('b1'))).toBeUndefined();
      });
    });
  });
}
