import { toBuildmanError, type BuildmanError } from '../errors/buildman-error.js';
import type { BuildExecutor, ExecutorContext, WorkerInfo } from './build-executor.js';

export interface OrphanSweepOptions {
  /** The executors to sweep, by name. */
  executors: ReadonlyMap<string, BuildExecutor>;
  /** Whether this attempt of this build still has an actor that owns its worker. */
  isLive(buildId: string, attempt: number): Promise<boolean>;
  /** Workers younger than this are left alone: a worker that just started may not be recorded yet. */
  graceMs: number;
  /** Time between sweeps. */
  intervalMs: number;
  logger: ExecutorContext['log'];
  /** Called after each executor's sweep that removed at least one worker (for metrics). */
  onRemoved?(executorName: string, count: number): void;
  /** Clock, for tests. @defaultValue Date.now */
  now?: () => number;
}

/** What one sweep did. Failures are reported here, not thrown: one executor must not stop the rest. */
export interface SweepResult {
  /** Workers stopped, in total. */
  removed: number;
  /** Workers stopped per executor name (every swept executor has an entry). */
  removedBy: Record<string, number>;
  /** Executors whose listing failed, or whose stops failed (the first error). */
  failed: Record<string, BuildmanError>;
}

/**
 * Stops workers that no build owns any more: left by a manager that crashed between starting a
 * worker and recording it, by a stop that failed, or by a takeover that lost track. Workers are
 * found by the installation's labels (`listWorkers`), so another installation's workers are never touched.
 */
export class OrphanSweep {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<SweepResult> | undefined;
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly opts: OrphanSweepOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** Sweeps now, then every `intervalMs` (a sweep never overlaps the previous one). */
  start(): void {
    if (this.closed || this.timer) return;
    this.schedule(0);
  }

  /** Stops the timer and waits for a sweep in progress. */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
  }

  /** One sweep over every executor. A call during a sweep joins it. */
  sweepOnce(): Promise<SweepResult> {
    this.inFlight ??= this.sweepAll().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      void this.sweepOnce().finally(() => {
        if (!this.closed) this.schedule(this.opts.intervalMs);
      });
    }, delayMs);
  }

  private async sweepAll(): Promise<SweepResult> {
    const result: SweepResult = { removed: 0, removedBy: {}, failed: {} };
    await Promise.all(
      [...this.opts.executors].map(async ([name, executor]) => {
        const { removed, error } = await this.sweepExecutor(name, executor);
        result.removedBy[name] = removed;
        result.removed += removed;
        if (error) result.failed[name] = error;
        if (removed > 0) this.opts.onRemoved?.(name, removed);
      }),
    );
    return result;
  }

  private async sweepExecutor(name: string, executor: BuildExecutor): Promise<{ removed: number; error?: BuildmanError }> {
    const log = this.opts.logger;
    let workers: WorkerInfo[];
    try {
      workers = await executor.listWorkers();
    } catch (err) {
      const error = toBuildmanError(err);
      log.warn({ executor: name, err: error.message, code: error.code }, 'orphan sweep: listing workers failed; will try again next sweep');
      return { removed: 0, error };
    }

    let removed = 0;
    let firstError: BuildmanError | undefined;
    const cutoff = this.now() - this.opts.graceMs;
    for (const worker of workers) {
      if (worker.createdAt > cutoff) continue;
      const { buildId, attempt, executionId } = worker;
      try {
        // When liveness cannot be read, keep the worker: stopping a live build is worse than waiting.
        if (await this.opts.isLive(buildId, attempt)) continue;
        await executor.stop({ buildId, attempt, executionId });
        removed++;
        log.info({ executor: name, buildId, attempt, executionId, running: worker.running }, 'orphan sweep: stopped a worker no build owns');
      } catch (err) {
        const error = toBuildmanError(err);
        firstError ??= error;
        log.warn({ executor: name, buildId, attempt, executionId, err: error.message, code: error.code }, 'orphan sweep: could not check or stop a worker; will try again next sweep');
      }
    }
    return { removed, error: firstError };
  }
}
