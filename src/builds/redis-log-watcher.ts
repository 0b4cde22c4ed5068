import type { Redis } from 'ioredis';
import type { Logger } from '../util/logger.js';
import type { LogEntry } from './build-record.js';

export type LogListener = (entry: LogEntry, index: number) => void;

/** What the append script publishes for each flushed batch. */
interface PublishedBatch {
  start: number;
  entries: LogEntry[];
}

/**
 * Live log followers, fed by the batches every instance publishes. One subscriber connection per
 * store, opened on the first watcher; a build's channel is subscribed while it has at least one
 * watcher. Until Redis confirms a SUBSCRIBE the channel is "pending", and `settled()` lets reads and
 * appends wait for it: a follower that watches and then reads the backlog misses nothing between.
 */
export class RedisLogWatcher {
  private sub?: Redis;
  private readonly listeners = new Map<string, Set<LogListener>>();
  private readonly subscribing = new Set<Promise<void>>();
  private closed = false;

  constructor(
    private readonly connect: () => Redis,
    private readonly log: Logger,
    private readonly timeoutMs: number,
  ) {}

  watch(channel: string, listener: LogListener): () => void {
    if (this.closed) return () => {};
    // A follower that throws must not starve the others (as in the memory store).
    const guarded: LogListener = (entry, index) => {
      try {
        listener(entry, index);
      } catch {
        // the follower reports its own errors
      }
    };
    let set = this.listeners.get(channel);
    if (!set) {
      this.listeners.set(channel, (set = new Set()));
      this.subscribe(channel);
    }
    set.add(guarded);

    let active = true;
    return () => {
      if (!active) return;
      active = false;
      set.delete(guarded);
      if (set.size === 0 && this.listeners.get(channel) === set) {
        this.listeners.delete(channel);
        this.connection()
          .unsubscribe(channel)
          .catch((err: Error) => this.log.debug({ channel, err: err.message }, 'log channel unsubscribe failed'));
      }
    };
  }

  /**
   * A promise while a SUBSCRIBE is unconfirmed; never rejects, and gives up after `timeoutMs`, so a
   * Redis that never answers cannot hold appends back for longer than their own deadline.
   */
  settled(): Promise<void> | undefined {
    if (this.subscribing.size === 0) return undefined;
    return new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.timeoutMs);
      void Promise.all(this.subscribing).then(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
    this.sub?.disconnect();
  }

  private subscribe(channel: string): void {
    const done: Promise<void> = this.connection()
      .subscribe(channel)
      .then(
        () => undefined,
        // It is retried when the connection is next ready; followers re-read the backlog anyway.
        (err: Error) => this.log.warn({ channel, err: err.message }, 'log channel subscribe failed'),
      )
      .finally(() => this.subscribing.delete(done));
    this.subscribing.add(done);
  }

  private connection(): Redis {
    if (this.sub) return this.sub;
    const sub = this.connect();
    sub.on('message', (channel: string, message: string) => this.deliver(channel, message));
    // Whenever the connection is (re)established, subscribe to every watched channel: a SUBSCRIBE
    // that failed during an outage is not replayed by ioredis, and subscribing twice is harmless.
    sub.on('ready', () => {
      for (const channel of this.listeners.keys()) this.subscribe(channel);
    });
    return (this.sub = sub);
  }

  private deliver(channel: string, message: string): void {
    const set = this.listeners.get(channel);
    if (!set) return;
    let batch: PublishedBatch;
    try {
      batch = JSON.parse(message) as PublishedBatch;
    } catch {
      this.log.warn({ channel }, 'ignored a malformed log batch');
      return;
    }
    batch.entries.forEach((entry, i) => {
      for (const listener of [...set]) listener(entry, batch.start + i);
    });
  }
}
