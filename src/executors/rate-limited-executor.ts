import { InfraError, PermanentError } from '../errors/buildman-error.js';
import type { BuildExecutor, StartRequest, StopRequest, WorkerInfo } from './build-executor.js';

export interface RateLimitOptions {
  /** Control-plane calls allowed per second, on average. @defaultValue 10 */
  ratePerSecond?: number;
  /** Calls allowed at once after a quiet spell. @defaultValue 20 */
  burst?: number;
}

export const DEFAULT_RATE_PER_SECOND = 10;
export const DEFAULT_BURST = 20;

/**
 * Wraps an executor so its control-plane calls (start, stop, runningCount, listWorkers) go through
 * one token bucket. A burst of builds then waits its turn, in arrival order, instead of tripping the
 * API server's or EC2's throttling and failing over to the next executor.
 */
export class RateLimitedExecutor implements BuildExecutor {
  private readonly bucket: TokenBucket;

  constructor(
    private readonly inner: BuildExecutor,
    options: RateLimitOptions = {},
  ) {
    this.bucket = new TokenBucket(options.ratePerSecond ?? DEFAULT_RATE_PER_SECOND, options.burst ?? DEFAULT_BURST, inner.name);
  }

  get name(): string {
    return this.inner.name;
  }
  get kind(): BuildExecutor['kind'] {
    return this.inner.kind;
  }
  get config(): BuildExecutor['config'] {
    return this.inner.config;
  }

  async start(req: StartRequest): Promise<string> {
    await this.bucket.take();
    return this.inner.start(req);
  }

  async stop(req: StopRequest): Promise<void> {
    await this.bucket.take();
    return this.inner.stop(req);
  }

  async runningCount(): Promise<number> {
    await this.bucket.take();
    return this.inner.runningCount();
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    await this.bucket.take();
    return this.inner.listWorkers();
  }

  /** Callers still waiting fail (the manager is shutting down); then the inner executor closes. */
  async close(): Promise<void> {
    this.bucket.close();
    return this.inner.close();
  }

  /** Callers waiting for a token right now. */
  get waiting(): number {
    return this.bucket.waiting;
  }
}

/** A token bucket that queues takers first come, first served. */
export class TokenBucket {
  private tokens: number;
  private lastRefill = Date.now();
  private readonly queue: Array<{ resolve: () => void; reject: (err: Error) => void }> = [];
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly ratePerSecond: number,
    private readonly burst: number,
    private readonly label = 'executor',
  ) {
    if (!(ratePerSecond > 0) || !(burst >= 1)) {
      throw new PermanentError(`${label}: rate limit needs ratePerSecond > 0 and burst ≥ 1 (got ${ratePerSecond}/s, burst ${burst})`, 'INVALID_CONFIG');
    }
    this.tokens = burst;
  }

  get waiting(): number {
    return this.queue.length;
  }

  /** Resolves when the caller may make one call. */
  take(): Promise<void> {
    if (this.closed) return Promise.reject(closedError(this.label));
    this.refill();
    // Someone already waiting goes first, even if a token has just appeared.
    if (this.queue.length === 0 && this.tokens >= 1) {
      this.tokens -= 1;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ resolve, reject });
      this.schedule();
    });
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    for (const waiter of this.queue.splice(0)) waiter.reject(closedError(this.label));
  }

  private refill(): void {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.lastRefill) / 1000) * this.ratePerSecond);
    this.lastRefill = now;
  }

  private schedule(): void {
    if (this.timer || this.queue.length === 0) return;
    const waitMs = Math.max(0, Math.ceil(((1 - this.tokens) / this.ratePerSecond) * 1000));
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.drain();
    }, waitMs);
  }

  private drain(): void {
    this.refill();
    while (this.queue.length > 0 && this.tokens >= 1) {
      this.tokens -= 1;
      this.queue.shift()!.resolve();
    }
    this.schedule();
  }
}

function closedError(label: string): InfraError {
  return new InfraError(`${label}: executor closed while the call waited for its rate limit`, 'EXECUTOR_CLOSED');
}
