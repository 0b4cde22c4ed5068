import type { JobEvent } from '../../machines/job-events.js';

/** What a build's owner answers about its actor after an event. */
export interface ActorStatus {
  state: string;
  done: boolean;
}

/**
 * Who owns which build actor. Each live build actor is owned by one manager instance; an event for
 * it that reaches another instance is forwarded to the owner, and a build whose owner died is
 * taken over by a live instance, which restores the actor from its persisted snapshot.
 */
export interface Coordinator {
  readonly instanceId: string;
  /** Becomes the build's owner unless a live instance owns it. True when we own it now. */
  acquire(buildId: string): Promise<boolean>;
  /** Gives ownership up (the build ended). */
  release(buildId: string): Promise<void>;
  /** The live owner, or undefined when nobody (alive) owns the build. */
  ownerOf(buildId: string): Promise<string | undefined>;
  /** Sends an event to the owner's actor and waits for its answer. Rejects when the owner does not answer. */
  forward(owner: string, buildId: string, event: JobEvent): Promise<ActorStatus | undefined>;
  /** Handles events other instances forward to us. */
  onForwarded(handler: (buildId: string, event: JobEvent) => Promise<ActorStatus | undefined>): void;
  /** Called with builds whose owner died, so this instance can take them over. */
  onOrphans(handler: (buildIds: string[]) => Promise<void>): void;
  /** Runs `fn` while no other instance runs its scheduling pass (keeps the worker cap global). */
  exclusive<T>(fn: () => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** The single-process coordinator of the embedded default: this instance owns everything. */
export class LocalCoordinator implements Coordinator {
  readonly instanceId = 'local';
  async acquire(): Promise<boolean> {
    return true;
  }
  async release(): Promise<void> {}
  async ownerOf(): Promise<string | undefined> {
    return this.instanceId;
  }
  async forward(): Promise<ActorStatus | undefined> {
    throw new Error('a local coordinator has no other instance to forward to');
  }
  onForwarded(): void {}
  onOrphans(): void {}
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return fn();
  }
  async close(): Promise<void> {}
}
