import { randomUUID } from 'node:crypto';
import { CoalescedListeners } from '../util/coalesced-listeners.js';
import type { Redis, RedisOptions } from 'ioredis';
import { closeRedis, createRedis, redisUnavailable, watchConnectionHealth, type RedisOrchestratorConfig } from '../redis/redis-connection.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { BuildQueue, QueueItem } from './build-queue.js';
import { DEFAULT_MINIMUM_EXTENSION_SECONDS, DEFAULT_RETRIES } from './memory-queue.js';
import { claim6 } from './lua/claim-6.js';
import { extend6 } from './lua/extend-6.js';
import { incomplete6 } from './lua/incomplete-6.js';
import { nextWake6 } from './lua/next-wake-6.js';
import { put6 } from './lua/put-6.js';
import { queueKeys, type QueueKeys } from './lua/queue-keys.js';
import type { QueueScript } from './lua/queue-script.js';
import { remove6 } from './lua/remove-6.js';
import { stats6 } from './lua/stats-6.js';

const SCRIPTS: readonly QueueScript[] = [put6, claim6, incomplete6, extend6, remove6, stats6, nextWake6];

/** setTimeout's largest delay; a later moment is reached in several hops. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** An operation gives up after this long, so a dead Redis is reported within seconds. */
const COMMAND_TIMEOUT_MS = 5000;

export interface RedisQueueOptions {
  /** Quay's `ORCHESTRATOR_PREFIX`; every key and the event channel start with it. */
  prefix: string;
  /**
   * The queue (Quay's `DOCKERFILE_BUILD_QUEUE_NAME`); items' own `queueName` is their repository.
   * @defaultValue 'dockerfilebuild'
   */
  queueName?: string;
  /**
   * A clock for tests. Without it the scripts read Redis's `TIME`, one clock for every manager.
   * @defaultValue Redis TIME
   */
  now?: () => number;
  logger?: Logger;
}

/**
 * The build queue in Redis (reference §6), with the same semantics as MemoryQueue. Every state change
 * is one Lua script (src/queue/lua/), so managers sharing a Redis never hand one build out twice, and
 * never run two builds of one repository. Key layout: lua/queue-keys.ts.
 *
 * A claim reads the first entry of an index of free repositories (O(log n)), after re-filing the items
 * whose lease lapsed or whose delay ended (amortised O(log n) each); it never scans waiting items.
 *
 * Nothing polls. Scripts PUBLISH each change on `<prefix>/queue_events`; a dedicated subscriber
 * connection delivers other managers' changes here. One unref'd timer is aimed, from Redis, at the
 * earliest moment an item becomes claimable by itself (a retry delay ending, a lease lapsing), even one
 * set by a manager that has since died.
 *
 * When Redis is down, operations reject within seconds with a retryable InfraError naming Redis, and
 * nothing throws out of band; once it is back the subscription is restored and listeners are called
 * once, since something may have become available meanwhile.
 */
export class RedisQueue implements BuildQueue {
  private readonly redis: Redis;
  private readonly sub: Redis;
  private readonly keys: QueueKeys;
  private readonly queueName: string;
  /** Tells this instance's own events apart: it acts on its changes directly, not on their echo. */
  private readonly instanceId = randomUUID();
  private readonly now?: () => number;
  private readonly log: Logger;
  private readonly listeners = new CoalescedListeners();
  private readonly subscribed: Promise<void>;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  /** A timer that fired: listeners are called once Redis's clock confirms the moment has come. */
  private dueAt = Infinity;
  private refreshing = false;
  private refreshAgain = false;
  private everSubscribed = false;
  private closed = false;

  constructor(config: RedisOrchestratorConfig, opts: RedisQueueOptions) {
    this.queueName = opts.queueName ?? 'dockerfilebuild';
    this.keys = queueKeys(opts.prefix, this.queueName);
    this.now = opts.now;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'redis-queue', queue: this.queueName });

    this.redis = connect(config, 'queue', {
      // A script sent before a disconnect may have run; resending could claim twice or give back two
      // retries. Its caller gets an error instead and decides.
      autoResendUnfulfilledCommands: false,
    }, this.log);
    for (const script of SCRIPTS) this.redis.defineCommand(script.name, { numberOfKeys: script.numberOfKeys, lua: script.lua });

    // We subscribe on every 'ready' ourselves, so we know when the subscription is back.
    this.sub = connect(config, 'queue-events', { autoResubscribe: false }, this.log);
    this.sub.on('message', (channel: string, message: string) => {
      if (channel === this.keys.channel) this.heard(message);
    });
    this.subscribed = new Promise((resolve) => {
      this.sub.on('ready', () => {
        this.sub.subscribe(this.keys.channel).then(
          () => {
            if (this.closed) return;
            if (this.everSubscribed) {
              this.log.info('queue events restored after a Redis outage');
              this.notify();
            }
            this.everSubscribed = true;
            this.refresh();
            resolve();
          },
          (err: unknown) => this.log.warn({ err }, 'could not subscribe to queue events; retrying on reconnect'),
        );
      });
    });
    this.subscribed.catch(() => undefined);
  }

  /** Resolves once cross-instance events are heard; rejects when Redis cannot be reached in time. */
  async ready(): Promise<void> {
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.subscribed,
        new Promise<never>((_, reject) => {
          timeout = setTimeout(() => reject(redisUnavailable(new Error('no connection within 5 s'))), COMMAND_TIMEOUT_MS);
        }),
      ]);
    } finally {
      clearTimeout(timeout);
    }
  }

  async put(queueName: string, body: string, opts: { retries?: number; availableAfterMs?: number } = {}): Promise<string> {
    // `availableAfterMs` is this host's epoch ms, compared with Redis's clock: hosts are assumed NTP-synced.
    const id = randomUUID();
    await this.run(put6, id, queueName, body, opts.retries ?? DEFAULT_RETRIES, opts.availableAfterMs === undefined ? '' : Math.round(opts.availableAfterMs), randomUUID());
    this.notify();
    this.refresh();
    return id;
  }

  async claim(processingSeconds: number): Promise<QueueItem | null> {
    const got = (await this.run(claim6, toMs(processingSeconds), randomUUID())) as [string, string, string, number, string] | null;
    if (!got) return null;
    this.refresh();
    const [id, queueName, body, retriesRemaining, stateId] = got;
    return { id, queueName, body, retriesRemaining: Number(retriesRemaining), stateId };
  }

  async complete(item: Pick<QueueItem, 'id'>): Promise<void> {
    await this.remove(item.id);
  }

  async incomplete(item: Pick<QueueItem, 'id'>, opts: { retryAfterSeconds: number; restoreRetry: boolean }): Promise<boolean> {
    const left = await this.run(incomplete6, item.id, toMs(opts.retryAfterSeconds), opts.restoreRetry ? '1' : '0');
    this.notify();
    this.refresh();
    return left === 1;
  }

  async extend(item: Pick<QueueItem, 'id'>, seconds: number, minimumExtensionSeconds = DEFAULT_MINIMUM_EXTENSION_SECONDS): Promise<boolean> {
    const moved = (await this.run(extend6, item.id, toMs(seconds), toMs(minimumExtensionSeconds))) === 1;
    if (moved) this.refresh();
    return moved;
  }

  async cancel(id: string): Promise<boolean> {
    return this.remove(id);
  }

  async stats(): Promise<{ available: number; running: number; delayed: number }> {
    const [available, running, delayed] = (await this.run(stats6)) as [number, number, number];
    return { available, running, delayed };
  }

  onAvailable(listener: () => void): () => void {
    return this.listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.listeners.close();
    this.clearTimer();
    await Promise.all([closeRedis(this.redis), closeRedis(this.sub)]);
  }

  private async remove(id: string): Promise<boolean> {
    const removed = await this.run(remove6, id);
    if (removed === 0) return false;
    // A running item held its repository: removing it may let a sibling run.
    if (removed === 2) this.notify();
    this.refresh();
    return true;
  }

  /** Runs a queue script with the shared arguments (see lua/prelude.ts); Redis failures become InfraErrors. */
  private async run(script: QueueScript, ...args: (string | number)[]): Promise<unknown> {
    const command = (this.redis as unknown as Record<string, (...a: (string | number)[]) => Promise<unknown>>)[script.name];
    const now = this.now ? String(Math.round(this.now())) : '';
    try {
      return await command.call(this.redis, ...this.keys.indexKeys, this.keys.base, now, this.keys.channel, `${this.instanceId}|${this.queueName}`, ...args);
    } catch (err) {
      throw redisUnavailable(err);
    }
  }

  /** An event from the channel: `<kind>|<sender>|<queue name>`. */
  private heard(message: string): void {
    const first = message.indexOf('|');
    const second = message.indexOf('|', first + 1);
    if (first < 0 || second < 0) return;
    const kind = message.slice(0, first);
    const sender = message.slice(first + 1, second);
    if (sender === this.instanceId || message.slice(second + 1) !== this.queueName) return;
    if (kind === 'available') this.notify();
    this.refresh();
  }

  /** Coalesced and asynchronous, so listeners never run inside a queue call and a burst calls them once. */
  private notify(): void {
    this.listeners.notify();
  }

  /** Re-aims the timer from Redis; calls during a refresh are folded into one more round. */
  private refresh(): void {
    if (this.closed) return;
    if (this.refreshing) {
      this.refreshAgain = true;
      return;
    }
    this.refreshing = true;
    void this.refreshLoop();
  }

  private async refreshLoop(): Promise<void> {
    try {
      do {
        this.refreshAgain = false;
        let now: number;
        let next: number;
        try {
          [now, next] = ((await this.run(nextWake6)) as [number, number]).map(Number) as [number, number];
        } catch (err) {
          // Redis is down: the reconnect calls listeners and refreshes again.
          this.log.debug({ err }, 'could not read the next wake-up moment');
          return;
        }
        if (this.closed) return;
        if (now >= this.dueAt) {
          this.dueAt = Infinity;
          this.notify();
        }
        this.aim(now, next < 0 ? Infinity : next);
      } while (this.refreshAgain && !this.closed);
    } finally {
      this.refreshing = false;
    }
  }

  /** One timer, at `next` in Redis's clock; `now` is that clock's reading, so skew between hosts does not matter. */
  private aim(now: number, next: number): void {
    // A timer that fired early (it measures local time) is re-aimed at the moment it missed.
    const target = Math.min(next, this.dueAt);
    if (target === this.timerAt) return;
    this.clearTimer();
    if (target === Infinity) return;
    this.timerAt = target;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      this.dueAt = Math.min(this.dueAt, target);
      this.refresh();
    }, Math.min(Math.max(target - now, 0), MAX_TIMER_MS));
    this.timer.unref?.();
  }

  private clearTimer(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Infinity;
  }
}

function toMs(seconds: number): number {
  return Math.round(seconds * 1000);
}

function connect(config: RedisOrchestratorConfig, name: string, extra: RedisOptions, log: Logger): Redis {
  const redis = createRedis(config, name, {
    commandTimeout: COMMAND_TIMEOUT_MS,
    // Back within a second of Redis returning: a stalled queue stalls every build.
    retryStrategy: (times: number) => Math.min(times * 200, 1000),
    ...extra,
  });
  return watchConnectionHealth(redis, log, name);
}
