import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { PopenExecutorConfig } from '../../src/config/config-types.js';
import { BuildmanError } from '../../src/errors/buildman-error.js';
import type { BuildExecutor, StartRequest, StopRequest, WorkerInfo } from '../../src/executors/build-executor.js';
import { RateLimitedExecutor, TokenBucket } from '../../src/executors/rate-limited-executor.js';

/** An executor that records each call with the (fake) time it reached the control plane. */
class RecordingExecutor implements BuildExecutor {
  readonly name = 'recorder';
  readonly kind = 'popen' as const;
  readonly config = { EXECUTOR: 'popen', NAME: 'recorder' } as PopenExecutorConfig;
  readonly calls: Array<{ op: string; at: number; buildId?: string }> = [];
  closed = false;

  async start(req: StartRequest): Promise<string> {
    this.calls.push({ op: 'start', at: Date.now(), buildId: req.buildId });
    return `${req.buildId}-${req.attempt}`;
  }
  async stop(req: StopRequest): Promise<void> {
    this.calls.push({ op: 'stop', at: Date.now(), buildId: req.buildId });
  }
  async runningCount(): Promise<number> {
    this.calls.push({ op: 'runningCount', at: Date.now() });
    return 3;
  }
  async listWorkers(): Promise<WorkerInfo[]> {
    this.calls.push({ op: 'listWorkers', at: Date.now() });
    return [];
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

const req = (i: number): StartRequest => ({ buildId: `b${i}`, attempt: 1, token: 't' });

beforeEach(() => {
  vi.useFakeTimers({ now: 0 });
});
afterEach(() => {
  vi.useRealTimers();
});

describe('RateLimitedExecutor', () => {
  it('passes identity and results through', async () => {
    const inner = new RecordingExecutor();
    const ex = new RateLimitedExecutor(inner);
    expect([ex.name, ex.kind, ex.config]).toEqual([inner.name, inner.kind, inner.config]);
    expect(await ex.start(req(1))).toBe('b1-1');
    expect(await ex.runningCount()).toBe(3);
    expect(await ex.listWorkers()).toEqual([]);
    await ex.stop({ buildId: 'b1', attempt: 1 });
    expect(inner.calls.map((c) => c.op)).toEqual(['start', 'runningCount', 'listWorkers', 'stop']);
  });

  it('lets a burst through at once, then paces the rest at the rate, in arrival order', async () => {
    const inner = new RecordingExecutor();
    const ex = new RateLimitedExecutor(inner, { ratePerSecond: 2, burst: 3 });
    const started = Array.from({ length: 7 }, (_, i) => ex.start(req(i)));
    await vi.advanceTimersByTimeAsync(0);
    expect(inner.calls.map((c) => c.buildId)).toEqual(['b0', 'b1', 'b2']);
    expect(ex.waiting).toBe(4);

    await vi.advanceTimersByTimeAsync(2000);
    await Promise.all(started);
    expect(inner.calls.map((c) => c.buildId)).toEqual(['b0', 'b1', 'b2', 'b3', 'b4', 'b5', 'b6']);
    // One every 500 ms after the burst.
    expect(inner.calls.map((c) => c.at)).toEqual([0, 0, 0, 500, 1000, 1500, 2000]);
    expect(ex.waiting).toBe(0);
  });

  it('shares one bucket across start, stop and the queries; nobody fails for waiting', async () => {
    const inner = new RecordingExecutor();
    const ex = new RateLimitedExecutor(inner, { ratePerSecond: 1, burst: 1 });
    const all = Promise.all([ex.start(req(1)), ex.runningCount(), ex.stop({ buildId: 'b1', attempt: 1 }), ex.listWorkers()]);
    await vi.advanceTimersByTimeAsync(3000);
    await all;
    expect(inner.calls.map((c) => [c.op, c.at])).toEqual([
      ['start', 0],
      ['runningCount', 1000],
      ['stop', 2000],
      ['listWorkers', 3000],
    ]);
  });

  it('refills up to the burst after a quiet spell, no further', async () => {
    const inner = new RecordingExecutor();
    const ex = new RateLimitedExecutor(inner, { ratePerSecond: 10, burst: 2 });
    await Promise.all([ex.start(req(1)), ex.start(req(2))]);
    await vi.advanceTimersByTimeAsync(60_000);
    const next = [ex.start(req(3)), ex.start(req(4)), ex.start(req(5))];
    await vi.advanceTimersByTimeAsync(0);
    expect(inner.calls.filter((c) => c.at === 60_000)).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(100);
    await Promise.all(next);
    expect(inner.calls.at(-1)).toMatchObject({ buildId: 'b5', at: 60_100 });
  });

  it('defaults to 10/s with a burst of 20', async () => {
    const inner = new RecordingExecutor();
    const ex = new RateLimitedExecutor(inner);
    const calls = Array.from({ length: 30 }, (_, i) => ex.start(req(i)));
    await vi.advanceTimersByTimeAsync(0);
    expect(inner.calls).toHaveLength(20);
    await vi.advanceTimersByTimeAsync(1000);
    await Promise.all(calls);
    expect(inner.calls).toHaveLength(30);
    expect(inner.calls.at(-1)!.at).toBe(1000);
  });

  it('close() fails waiting callers with a retryable error and closes the inner executor', async () => {
    const inner = new RecordingExecutor();
    const ex = new RateLimitedExecutor(inner, { ratePerSecond: 1, burst: 1 });
    await ex.start(req(1));
    const waiting = ex.start(req(2));
    const settled = waiting.catch((e: unknown) => e);
    await ex.close();
    const err = await settled;
    expect(err).toBeInstanceOf(BuildmanError);
    expect((err as BuildmanError).kind).toBe('retryable');
    expect(inner.closed).toBe(true);
    await vi.advanceTimersByTimeAsync(5000);
    expect(inner.calls).toHaveLength(1);
    await expect(ex.runningCount()).rejects.toMatchObject({ code: 'EXECUTOR_CLOSED' });
  });

  it('refuses a nonsensical rate', () => {
    expect(() => new TokenBucket(0, 5)).toThrow(/ratePerSecond > 0/);
    expect(() => new TokenBucket(1, 0)).toThrow(/burst/);
  });
});
