import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryQueue } from '../../src/queue/memory-queue.js';
import { queueContract } from './queue-contract.js';

queueContract('MemoryQueue', async (clock) => new MemoryQueue({ now: clock.now }));

const flush = () => new Promise<void>((resolve) => queueMicrotask(resolve));

describe('MemoryQueue specifics', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('coalesces a burst of changes into one notification, delivered asynchronously', async () => {
    const q = new MemoryQueue();
    let calls = 0;
    q.onAvailable(() => {
      calls += 1;
    });
    await Promise.all([q.put('a/', '1'), q.put('b/', '2'), q.put('c/', '3')]);
    await flush();
    expect(calls).toBe(1);
    await q.close();
  });

  it('keeps notifying the other listeners when one throws', async () => {
    const q = new MemoryQueue();
    let calls = 0;
    q.onAvailable(() => {
      throw new Error('boom');
    });
    q.onAvailable(() => {
      calls += 1;
    });
    await q.put('a/', '1');
    await flush();
    expect(calls).toBe(1);
    await q.close();
  });

  it('fires its one timer exactly when the retry delay ends (fake timers)', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const q = new MemoryQueue();
    let calls = 0;
    q.onAvailable(() => {
      calls += 1;
    });
    await q.put('a/', '1');
    const item = await q.claim(530);
    await flush();
    calls = 0;

    await q.incomplete(item!, { retryAfterSeconds: 300, restoreRetry: true });
    await flush();
    expect(calls).toBe(1); // the put-back
    expect(vi.getTimerCount()).toBe(1);

    vi.advanceTimersByTime(299_999);
    await flush();
    expect(calls).toBe(1);
    vi.advanceTimersByTime(1);
    await flush();
    expect(calls).toBe(2);
    expect(await q.claim(60)).not.toBeNull();
    await q.close();
  });

  it('aims the timer at the earliest moment across items, and re-aims after extend', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const q = new MemoryQueue();
    let calls = 0;
    q.onAvailable(() => {
      calls += 1;
    });
    await q.put('a/', '1');
    await q.put('b/', '2');
    const a = await q.claim(100);
    await q.claim(50);
    expect(await q.extend(a!, 400)).toBe(true);
    await flush();
    calls = 0;
    expect(vi.getTimerCount()).toBe(1);

    vi.advanceTimersByTime(50_000); // b's lease lapses
    await flush();
    expect(calls).toBe(1);
    expect((await q.claim(60))?.queueName).toBe('b/');
    vi.advanceTimersByTime(60_000); // b's new lease lapses
    await flush();
    expect(calls).toBe(2);
    vi.advanceTimersByTime(400_000 - 110_000 - 1);
    await flush();
    expect(calls).toBe(2);
    vi.advanceTimersByTime(1); // a's extended lease lapses
    await flush();
    expect(calls).toBe(3);
    await q.close();
  });

  it('close clears its timer', async () => {
    vi.useFakeTimers({ now: 1_700_000_000_000 });
    const q = new MemoryQueue();
    await q.put('a/', '1');
    await q.claim(60);
    expect(vi.getTimerCount()).toBe(1);
    await q.close();
    expect(vi.getTimerCount()).toBe(0);
  });
});
