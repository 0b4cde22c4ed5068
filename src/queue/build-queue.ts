/**
 * The build queue (reference §6), with buildman's fixes: claims are leases, retries are counted per
 * build, `retryAfter` delays an item, and at most one item per `queueName` (one repository) runs.
 * The in-memory and Redis queues implement this same interface.
 */
export interface QueueItem {
  id: string;
  /** `dockerfilebuild/<namespace>/<repo>/`: items with the same name run one at a time. */
  queueName: string;
  /** JSON `{"build_uuid": ..., "pull_credentials": ...}` as in Quay. */
  body: string;
  /** Already decremented by the claim that returned this item. */
  retriesRemaining: number;
  /** Changes on every claim; a stale holder's updates are refused. */
  stateId: string;
}

export interface BuildQueue {
  /** Adds an item; it is available at once unless `availableAfterMs` (epoch ms) is given. */
  put(queueName: string, body: string, opts?: { retries?: number; availableAfterMs?: number }): Promise<string>;
  /**
   * Claims the oldest available item whose queue name has no running item, with a lease of
   * `processingSeconds`. Decrements its retries. Returns null when nothing is available.
   */
  claim(processingSeconds: number): Promise<QueueItem | null>;
  /** Deletes a finished item. */
  complete(item: Pick<QueueItem, 'id'>): Promise<void>;
  /**
   * Puts a claimed item back: available after `retryAfterSeconds`, with its retry given back when
   * `restoreRetry`. Returns whether it has retries left.
   */
  incomplete(item: Pick<QueueItem, 'id'>, opts: { retryAfterSeconds: number; restoreRetry: boolean }): Promise<boolean>;
  /** Moves the lease to now + seconds, only if that is more than `minimumExtensionSeconds` beyond the current one. */
  extend(item: Pick<QueueItem, 'id'>, seconds: number, minimumExtensionSeconds?: number): Promise<boolean>;
  /** Removes an item whatever its state (cancel). Returns whether it existed. */
  cancel(id: string): Promise<boolean>;
  /** Counts for gauges: available now, running (leased), waiting (retry_after in the future). */
  stats(): Promise<{ available: number; running: number; delayed: number }>;
  /**
   * Calls `listener` whenever an item may have become claimable (added, put back, lease lapsed,
   * retry delay over), so the scheduler reacts at once instead of polling. Returns an unsubscribe.
   */
  onAvailable(listener: () => void): () => void;
  close(): Promise<void>;
}
