import { afterEach, describe, expect, it } from 'vitest';
import type { BuildQueue } from '../../src/queue/build-queue.js';

/**
 * The clock a queue under test reads. It is real time plus an offset: `advance` jumps the offset
 * for long waits (a 300 s retry delay), while the tests about timers use short real durations,
 * so any implementation (in-memory timers, Redis) can run the same suite without faking timers.
 */
export interface TestClock {
  now(): number;
  advance(ms: number): void;
}

export function offsetClock(): TestClock {
  let offset = 0;
  return {
    now: () => Date.now() + offset,
    advance: (ms) => {
      offset += ms;
    },
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Resolves on the queue's next onAvailable call; rejects after `timeoutMs` of real time. */
function nextAvailable(queue: BuildQueue, timeoutMs = 2000): Promise<void> {
  return new Promise((resolve, reject) => {
    const timeout = setTimeout(() => {
      off();
      reject(new Error(`onAvailable not called within ${timeoutMs} ms`));
    }, timeoutMs);
    const off = queue.onAvailable(() => {
      clearTimeout(timeout);
      off();
      resolve();
    });
  });
}

/** The behaviour every BuildQueue must have (reference §6 plus buildman's rules). */
export function queueContract(name: string, makeQueue: (clock: TestClock) => Promise<BuildQueue>): void {
  describe(`BuildQueue contract: ${name}`, () => {
    let clock: TestClock;
    let queue: BuildQueue;
    const open: BuildQueue[] = [];

    async function fresh(): Promise<BuildQueue> {
      clock = offsetClock();
      queue = await makeQueue(clock);
      open.push(queue);
      return queue;
    }

    afterEach(async () => {
      await Promise.all(open.splice(0).map((q) => q.close()));
    });

    it('claims an item once: retries decremented, a second claim gets nothing', async () => {
      const q = await fresh();
      const id = await q.put('dockerfilebuild/ns/repo/', '{"build_uuid":"b1"}', { retries: 3 });
      const item = await q.claim(60);
      expect(item).toMatchObject({ id, queueName: 'dockerfilebuild/ns/repo/', body: '{"build_uuid":"b1"}', retriesRemaining: 2 });
      expect(item?.stateId).toBeTruthy();
      expect(await q.claim(60)).toBeNull();
    });

    it('never hands one item to two concurrent claims', async () => {
      const q = await fresh();
      await q.put('a/', 'x');
      await q.put('b/', 'y');
      const got = await Promise.all([q.claim(60), q.claim(60), q.claim(60)]);
      const ids = got.filter((g) => g !== null).map((g) => g!.id);
      expect(ids).toHaveLength(2);
      expect(new Set(ids).size).toBe(2);
    });

    it('returns the oldest available item first', async () => {
      const q = await fresh();
      const first = await q.put('a/', '1');
      const second = await q.put('b/', '2');
      const third = await q.put('c/', '3');
      expect((await q.claim(60))?.id).toBe(first);
      expect((await q.claim(60))?.id).toBe(second);
      expect((await q.claim(60))?.id).toBe(third);
    });

    it('runs one item per queue name, others in parallel', async () => {
      const q = await fresh();
      const a1 = await q.put('dockerfilebuild/ns/a/', 'a1');
      const a2 = await q.put('dockerfilebuild/ns/a/', 'a2');
      const b1 = await q.put('dockerfilebuild/ns/b/', 'b1');

      const first = await q.claim(60);
      expect(first?.id).toBe(a1);
      // a2 waits behind a1; b1 is taken instead.
      expect((await q.claim(60))?.id).toBe(b1);
      expect(await q.claim(60)).toBeNull();

      await q.complete(first!);
      expect((await q.claim(60))?.id).toBe(a2);
    });

    it('makes an item claimable again once its lease lapses, with a new stateId and one retry fewer', async () => {
      const q = await fresh();
      await q.put('a/', 'x', { retries: 3 });
      const first = await q.claim(30);
      clock.advance(29_000);
      expect(await q.claim(30)).toBeNull();
      clock.advance(1_000);
      const again = await q.claim(30);
      expect(again?.id).toBe(first?.id);
      expect(again?.stateId).not.toBe(first?.stateId);
      expect(again?.retriesRemaining).toBe(1);
    });

    it('a lapsed lease frees its queue name for a sibling', async () => {
      const q = await fresh();
      await q.put('a/', 'first', { retries: 1 });
      const sibling = await q.put('a/', 'second');
      await q.claim(30); // uses the last retry
      expect(await q.claim(30)).toBeNull();
      clock.advance(30_000);
      expect((await q.claim(30))?.id).toBe(sibling);
    });

    it('calls onAvailable when a lease lapses, without polling', async () => {
      const q = await fresh();
      const id = await q.put('a/', 'x');
      await q.claim(0.15);
      await sleep(20); // let the put's own notification pass
      const started = Date.now();
      await nextAvailable(q);
      expect(Date.now() - started).toBeGreaterThanOrEqual(80);
      expect((await q.claim(60))?.id).toBe(id);
    });

    it('counts retries down and never returns an item at zero', async () => {
      const q = await fresh();
      await q.put('a/', 'x', { retries: 2 });
      expect((await q.claim(10))?.retriesRemaining).toBe(1);
      clock.advance(10_000);
      expect((await q.claim(10))?.retriesRemaining).toBe(0);
      clock.advance(10_000);
      expect(await q.claim(10)).toBeNull();
      expect(await q.stats()).toEqual({ available: 0, running: 0, delayed: 0 });
    });

    it('never returns an item put with zero retries', async () => {
      const q = await fresh();
      await q.put('a/', 'dead', { retries: 0 });
      const live = await q.put('b/', 'live');
      expect((await q.claim(10))?.id).toBe(live);
      expect(await q.claim(10)).toBeNull();
    });

    it('incomplete: waits retry_after, gives the retry back when asked, says whether retries remain', async () => {
      const q = await fresh();
      const id = await q.put('a/', 'x', { retries: 2 });

      let item = await q.claim(60); // retries 1
      expect(await q.incomplete(item!, { retryAfterSeconds: 300, restoreRetry: true })).toBe(true);
      expect(await q.claim(60)).toBeNull();
      clock.advance(299_000);
      expect(await q.claim(60)).toBeNull();
      clock.advance(1_000);
      item = await q.claim(60);
      expect(item).toMatchObject({ id, retriesRemaining: 1 }); // 2 → 1, restored to 2, → 1

      expect(await q.incomplete(item!, { retryAfterSeconds: 0, restoreRetry: false })).toBe(true);
      item = await q.claim(60);
      expect(item?.retriesRemaining).toBe(0);
      expect(await q.incomplete(item!, { retryAfterSeconds: 0, restoreRetry: false })).toBe(false);
      expect(await q.claim(60)).toBeNull();
    });

    it('incomplete frees the queue name at once, even while the item itself waits', async () => {
      const q = await fresh();
      await q.put('a/', 'first');
      const sibling = await q.put('a/', 'second');
      const first = await q.claim(60);
      await q.incomplete(first!, { retryAfterSeconds: 300, restoreRetry: true });
      expect((await q.claim(60))?.id).toBe(sibling);
    });

    it('honours availableAfterMs on put', async () => {
      const q = await fresh();
      const id = await q.put('a/', 'x', { availableAfterMs: clock.now() + 60_000 });
      expect(await q.claim(10)).toBeNull();
      expect((await q.stats()).delayed).toBe(1);
      clock.advance(60_000);
      expect((await q.claim(10))?.id).toBe(id);
    });

    it('calls onAvailable when a retry delay ends', async () => {
      const q = await fresh();
      const id = await q.put('a/', 'x');
      const item = await q.claim(60);
      const notified = nextAvailable(q);
      await q.incomplete(item!, { retryAfterSeconds: 0.2, restoreRetry: true });
      await notified; // the put-back itself
      expect(await q.claim(60)).toBeNull();
      const started = Date.now();
      await nextAvailable(q);
      expect(Date.now() - started).toBeGreaterThanOrEqual(100);
      expect((await q.claim(60))?.id).toBe(id);
    });

    it('extend: moves the lease only past the minimum extension', async () => {
      const q = await fresh();
      await q.put('a/', 'x');
      const item = await q.claim(60);
      expect(await q.extend(item!, 70, 20)).toBe(false); // 10 s further: too little
      expect(await q.extend(item!, 81, 20)).toBe(true); // 21 s further
      expect(await q.extend(item!, 90)).toBe(false); // default minimum 20 s: 9 s further
      clock.advance(80_000);
      expect(await q.claim(60)).toBeNull(); // still leased until 81 s
      clock.advance(1_000);
      expect((await q.claim(60))?.id).toBe(item?.id);
      expect(await q.extend({ id: 'no-such-item' }, 300, 20)).toBe(false);
    });

    it('complete deletes the item and frees its queue name, with a notification', async () => {
      const q = await fresh();
      await q.put('a/', 'x');
      const sibling = await q.put('a/', 'y');
      const item = await q.claim(60);
      await sleep(20);
      const notified = nextAvailable(q);
      await q.complete(item!);
      await notified;
      expect((await q.claim(60))?.id).toBe(sibling);
      expect(await q.incomplete(item!, { retryAfterSeconds: 0, restoreRetry: true })).toBe(false);
    });

    it('cancel removes an item in any state and says whether it existed', async () => {
      const q = await fresh();
      const waiting = await q.put('a/', 'w');
      expect(await q.cancel(waiting)).toBe(true);
      expect(await q.cancel(waiting)).toBe(false);
      expect(await q.claim(10)).toBeNull();

      const running = await q.put('b/', 'r');
      const sibling = await q.put('b/', 's');
      await q.claim(60);
      await sleep(20);
      const notified = nextAvailable(q);
      expect(await q.cancel(running)).toBe(true);
      await notified;
      expect((await q.claim(60))?.id).toBe(sibling);
    });

    it('stats counts available, running and delayed items', async () => {
      const q = await fresh();
      expect(await q.stats()).toEqual({ available: 0, running: 0, delayed: 0 });
      await q.put('a/', '1');
      await q.put('b/', '2');
      await q.put('c/', '3', { availableAfterMs: clock.now() + 60_000 });
      await q.put('d/', 'dead', { retries: 0 });
      expect(await q.stats()).toEqual({ available: 2, running: 0, delayed: 1 });
      const item = await q.claim(30);
      expect(await q.stats()).toEqual({ available: 1, running: 1, delayed: 1 });
      await q.incomplete(item!, { retryAfterSeconds: 120, restoreRetry: true });
      expect(await q.stats()).toEqual({ available: 1, running: 0, delayed: 2 });
      clock.advance(120_000);
      expect(await q.stats()).toEqual({ available: 3, running: 0, delayed: 0 });
    });

    it('calls onAvailable on put, and stops after unsubscribing', async () => {
      const q = await fresh();
      const notified = nextAvailable(q);
      await q.put('a/', 'x');
      await notified;

      let calls = 0;
      const off = q.onAvailable(() => {
        calls += 1;
      });
      off();
      await q.put('b/', 'y');
      await sleep(50);
      expect(calls).toBe(0);
    });
  });
}
