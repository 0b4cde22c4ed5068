import { randomUUID } from 'node:crypto';
import { CoalescedListeners } from '../util/coalesced-listeners.js';
import type { BuildQueue, QueueItem } from './build-queue.js';

/** Quay's `QueueItem.retries_remaining` default. Builds are queued with fewer (see `buildRetries`). */
export const DEFAULT_RETRIES = 5;
/** Quay's `extend_processing` default minimum extension. */
export const DEFAULT_MINIMUM_EXTENSION_SECONDS = 20;
/** setTimeout's largest delay; a later moment is reached in several hops. */
const MAX_TIMER_MS = 2 ** 31 - 1;

interface Entry {
  id: string;
  queueName: string;
  body: string;
  retriesRemaining: number;
  stateId: string;
  /** Epoch ms before which the item is not claimable (Quay's `available_after`). */
  availableAfter: number;
  /** Claimed and not put back (Quay's `available = false`). */
  leased: boolean;
  /** Epoch ms when the lease lapses (Quay's `processing_expires`). */
  processingExpires: number;
}

/**
 * The build queue in one process (reference §6). Items live in a Map, whose insertion order is
 * Quay's "lowest id first". Operations act by id, as Quay's do; the `stateId` only changes on
 * claim. Nothing polls: listeners hear about every change that may free an item, and one unref'd
 * timer covers the next moment an item becomes claimable by itself (a retry delay ending, a lease
 * lapsing).
 */
export class MemoryQueue implements BuildQueue {
  private readonly items = new Map<string, Entry>();
  private readonly listeners = new CoalescedListeners();
  private readonly now: () => number;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  private closed = false;

  constructor(opts: { now?: () => number } = {}) {
    this.now = opts.now ?? Date.now;
  }

  async put(queueName: string, body: string, opts: { retries?: number; availableAfterMs?: number } = {}): Promise<string> {
    const id = randomUUID();
    this.items.set(id, {
      id,
      queueName,
      body,
      retriesRemaining: opts.retries ?? DEFAULT_RETRIES,
      stateId: randomUUID(),
      availableAfter: opts.availableAfterMs ?? this.now(),
      leased: false,
      processingExpires: 0,
    });
    this.changed(true);
    return id;
  }

  async claim(processingSeconds: number): Promise<QueueItem | null> {
    const now = this.now();
    const busy = new Set<string>();
    for (const e of this.items.values()) if (isRunning(e, now)) busy.add(e.queueName);

    for (const e of this.items.values()) {
      if (!isAvailable(e, now) || busy.has(e.queueName)) continue;
      e.leased = true;
      e.processingExpires = now + processingSeconds * 1000;
      e.retriesRemaining -= 1;
      e.stateId = randomUUID();
      this.changed(false);
      return { id: e.id, queueName: e.queueName, body: e.body, retriesRemaining: e.retriesRemaining, stateId: e.stateId };
    }
    return null;
  }

  async complete(item: Pick<QueueItem, 'id'>): Promise<void> {
    this.remove(item.id);
  }

  async incomplete(item: Pick<QueueItem, 'id'>, opts: { retryAfterSeconds: number; restoreRetry: boolean }): Promise<boolean> {
    const e = this.items.get(item.id);
    if (!e) return false;
    e.leased = false;
    e.availableAfter = this.now() + opts.retryAfterSeconds * 1000;
    if (opts.restoreRetry) e.retriesRemaining += 1;
    // Even while the item itself waits, its repository is free again for its siblings.
    this.changed(true);
    return e.retriesRemaining > 0;
  }

  async extend(item: Pick<QueueItem, 'id'>, seconds: number, minimumExtensionSeconds = DEFAULT_MINIMUM_EXTENSION_SECONDS): Promise<boolean> {
    const e = this.items.get(item.id);
    if (!e) return false;
    const expires = this.now() + seconds * 1000;
    // Quay's rule: skip small extensions, so frequent heartbeats do not each write.
    if (expires - e.processingExpires <= minimumExtensionSeconds * 1000) return false;
    e.processingExpires = expires;
    this.changed(false);
    return true;
  }

  async cancel(id: string): Promise<boolean> {
    return this.remove(id);
  }

  async stats(): Promise<{ available: number; running: number; delayed: number }> {
    const now = this.now();
    let available = 0;
    let running = 0;
    let delayed = 0;
    for (const e of this.items.values()) {
      if (isRunning(e, now)) running += 1;
      else if (e.retriesRemaining <= 0) continue;
      else if (e.availableAfter > now) delayed += 1;
      else available += 1;
    }
    return { available, running, delayed };
  }

  onAvailable(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.listeners.close();
    this.clearTimer();
  }

  private remove(id: string): boolean {
    const e = this.items.get(id);
    if (!e) return false;
    const wasRunning = isRunning(e, this.now());
    this.items.delete(id);
    // A running item held its repository; removing it may let a sibling run.
    this.changed(wasRunning);
    return true;
  }

  /** After every change: maybe tell listeners, and re-aim the timer. */
  private changed(notify: boolean): void {
    if (notify) this.notify();
    this.schedule();
  }

  /** Coalesced and asynchronous, so listeners never run inside a queue call and a burst calls them once. */
  private notify(): void {
    this.listeners.notify();
  }

  /** Aims the single timer at the earliest future moment an item becomes claimable by itself. */
  private schedule(): void {
    if (this.closed) return;
    const now = this.now();
    let next = Infinity;
    for (const e of this.items.values()) {
      // A lapsing lease frees the repository even when the item itself has no retries left.
      if (isRunning(e, now)) next = Math.min(next, e.processingExpires);
      else if (e.retriesRemaining > 0 && e.availableAfter > now) next = Math.min(next, e.availableAfter);
    }
    if (next === this.timerAt) return;
    this.clearTimer();
    if (next === Infinity) return;
    this.timerAt = next;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      // Timers may fire a hair early against the injected clock; then `schedule` re-aims at the same moment.
      if (this.now() >= next) this.notify();
      this.schedule();
    }, Math.min(Math.max(next - now, 0), MAX_TIMER_MS));
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}

function isRunning(e: Entry, now: number): boolean {
  return e.leased && e.processingExpires > now;
}

function isAvailable(e: Entry, now: number): boolean {
  return e.availableAfter <= now && !isRunning(e, now) && e.retriesRemaining > 0;
}
