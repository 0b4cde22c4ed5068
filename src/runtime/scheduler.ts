import type { Coordinator } from '../cluster/coordinator.js';
import type { JobRegistry } from '../orchestrator/job-registry.js';
import type { BuildQueue } from '../queue/build-queue.js';
import type { Logger } from '../util/logger.js';
import { CLAIM_LEASE_SECONDS, type ActorHost } from './actor-host.js';

/**
 * Claims queued builds while worker slots are free. It runs when something changes (a build is
 * queued or put back, a slot frees up) rather than on a timer, so a new build is picked at once.
 */
export class Scheduler {
  private running = false;
  private again = false;
  private closed = false;
  private readonly unsubscribe: Array<() => void> = [];
  private retryTimer?: NodeJS.Timeout;

  constructor(
    private readonly deps: { queue: BuildQueue; jobs: JobRegistry; host: ActorHost; coordinator: Coordinator; workerCap: number; logger: Logger },
  ) {
    this.unsubscribe.push(deps.queue.onAvailable(() => this.kick()));
    this.unsubscribe.push(deps.jobs.onReleased(() => this.kick()));
  }

  /** Asks for a scheduling pass; passes never overlap, and a kick during one makes another follow. */
  kick(): void {
    if (this.closed) return;
    this.again = true;
    if (this.running) return;
    this.running = true;
    void this.pass().finally(() => {
      this.running = false;
      // A kick that landed after the last loop check but before this point must not be lost.
      if (this.again) this.kick();
    });
  }

  private async pass(): Promise<void> {
    try {
      while (this.again && !this.closed) {
        this.again = false;
        // One instance at a time counts and claims, so the worker cap holds across instances.
        await this.deps.coordinator.exclusive(async () => {
          // Counted once per pass (on Redis a count scans the job keys), then kept up to date here.
          let held = await this.deps.jobs.count();
          while (!this.closed && held < this.deps.workerCap) {
            const item = await this.deps.queue.claim(CLAIM_LEASE_SECONDS);
            if (!item) break;
            if (await this.deps.host.claimed(item)) held++;
          }
        });
      }
    } catch (err) {
      // The queue or orchestrator is unavailable: try again shortly rather than stall.
      this.again = false;
      this.deps.logger.error({ err }, 'scheduling pass failed; retrying in 1 s');
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.kick(), 1000).unref();
    }
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.retryTimer);
    for (const off of this.unsubscribe) off();
  }
}
