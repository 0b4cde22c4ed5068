import type { Redis } from 'ioredis';
import { KeyWatchers } from './key-watchers.js';
import { enableExpiredKeyspaceEvents } from '../redis/keyspace-events.js';
import { createRedis, redisUnavailable, watchConnectionHealth, type RedisOrchestratorConfig, closeRedis } from '../redis/redis-connection.js';
import type { Logger } from '../util/logger.js';
import { KeyEvent, KeyExistsError, KeyNotFoundError, type KeyChange, type Orchestrator } from './orchestrator.js';
import { EXPIRED_MARKER_TTL_MS, MAIN_KEY_GRACE_MS, RedisKeyLayout, escapeGlob, isSiblingKey } from './redis-key-layout.js';
import { deleteKeyScript, dueKeysScript, expireKeyScript, setKeyScript } from './redis-orchestrator-scripts.js';

export interface RedisOrchestratorOptions {
  /** ORCHESTRATOR_PREFIX: scopes the event channel, the keyspace subscription and the sweep. */
  prefix: string;
  logger: Logger;
  /** How often expiries missed by keyspace notifications are looked for. Default 1000 ms. */
  sweepIntervalMs?: number;
}

/** A command that gets no answer fails after this long (Redis down, a sentinel that hangs). */
const COMMAND_TIMEOUT_MS = 3000;
/** How long a write waits for the first subscription, so its own event is not missed at startup. */
const SUBSCRIBE_WAIT_MS = 1000;
/** Due keys fetched per sweep round, and rounds per sweep (the next sweep carries on). */
const SWEEP_BATCH = 100;
const SWEEP_ROUNDS = 10;


/**
 * Quay's Redis orchestrator (reference §3), keeping its key layout and event channel so Quay's
 * tools and ours can share a Redis, with these differences:
 * - every write is one Lua script (atomic), and publishes its event from inside the script;
 * - EXPIRE is published on the channel too (Quay never does), so other tools can follow the fleet;
 *   watchers of this class still get EXPIRE only from the one instance that expired the key;
 * - the keyspace subscription covers our prefix only (Q9), and the notification setting is merged
 *   with the server's rather than overwritten;
 * - a sorted set of deadlines and a periodic sweep find expiries that notifications missed
 *   (notifications off, or a disconnect), so expiry never silently stops;
 * - the `/expired` marker gets a TTL (Q8); overwrite of a missing key publishes nothing.
 *
 * Exactly once: with any number of instances on one prefix, each expiry is delivered as EXPIRE by
 * exactly one of them, whichever runs the expire script first (keyspace handler or sweep).
 */
export class RedisOrchestrator implements Orchestrator {
  private readonly layout: RedisKeyLayout;
  private readonly logger: Logger;
  /** Commands and scripts. */
  private readonly cmd: Redis;
  /** The event channel and keyspace notifications (a subscribed connection takes no other commands). */
  private readonly sub: Redis;
  // A failing watcher must not break the subscription or the other watchers.
  private readonly watchers = new KeyWatchers((change, err) =>
    this.logger.error({ key: change.key, err: errorMessage(err) }, 'an orchestrator watcher threw'),
  );
  private readonly sweepTimer: NodeJS.Timeout;
  /** Expiry work under way; close() waits for it, so an expired key's EXPIRE is never dropped. */
  private readonly inFlight = new Set<Promise<void>>();
  private readonly firstSubscription: Promise<void>;
  private subscribed = false;
  private markSubscribed: () => void = () => {};
  private sweeping = false;
  private closed = false;
  private closing?: Promise<void>;

  constructor(
    private readonly config: RedisOrchestratorConfig,
    opts: RedisOrchestratorOptions,
  ) {
    this.layout = new RedisKeyLayout(opts.prefix);
    this.logger = opts.logger.child({ component: 'redis-orchestrator' });
    this.firstSubscription = new Promise((resolve) => {
      this.markSubscribed = resolve;
    });

    this.cmd = createRedis(config, 'orchestrator', { commandTimeout: COMMAND_TIMEOUT_MS });
    // Our own 'ready' handler subscribes, on every (re)connect. ioredis's autoResubscribe only
    // restores subscriptions whose reply it saw, so one that failed while Redis was down would be lost.
    this.sub = createRedis(config, 'orchestrator-events', { commandTimeout: COMMAND_TIMEOUT_MS, autoResubscribe: false });
    watchConnectionHealth(this.cmd, this.logger, 'commands');
    watchConnectionHealth(this.sub, this.logger, 'events');

    // A restarted (or failed-over) server has lost the setting: apply it after every connect.
    if (!config.REDIS_SKIP_KEYSPACE_EVENT_SETUP) this.cmd.on('ready', () => void this.setUpKeyspaceEvents());
    this.sub.on('ready', () => void this.subscribe());
    this.sub.on('message', (channel: string, message: string) => this.onChannelMessage(channel, message));
    this.sub.on('pmessage', (_pattern: string, channel: string, message: string) => this.onKeyspaceMessage(channel, message));

    this.sweepTimer = setInterval(() => this.track(this.sweep()), opts.sweepIntervalMs ?? 1000);
    this.sweepTimer.unref();
  }

  /** Resolves once the event channel and keyspace subscriptions are in place for the first time. */
  ready(): Promise<void> {
    return this.firstSubscription;
  }

  async getKey(key: string): Promise<string> {
    const value = await this.run(() => this.cmd.get(key));
    if (value === null) throw new KeyNotFoundError(key);
    return value;
  }

  async setKey(key: string, value: string, opts: { overwrite?: boolean; expirationSeconds?: number } = {}): Promise<void> {
    let expirationMs: number | '' = '';
    if (opts.expirationSeconds !== undefined) {
      if (!Number.isFinite(opts.expirationSeconds)) throw new TypeError(`expirationSeconds must be a number, got ${opts.expirationSeconds}`);
      expirationMs = Math.max(1, Math.round(opts.expirationSeconds * 1000));
    }
    await this.subscriptionSettled();
    const result = await this.run(() =>
      setKeyScript.run(this.cmd, this.layout.scriptKeys(key), [
        value,
        opts.overwrite ? '1' : '0',
        expirationMs,
        MAIN_KEY_GRACE_MS,
        this.layout.channel,
      ]),
    );
    if (result === 'exists') throw new KeyExistsError(key);
  }

  async deleteKey(key: string): Promise<void> {
    await this.subscriptionSettled();
    const value = await this.run(() => deleteKeyScript.run(this.cmd, this.layout.scriptKeys(key), [this.layout.channel]));
    if (value === null) throw new KeyNotFoundError(key);
  }

  async getPrefixedKeys(prefix: string): Promise<Map<string, string>> {
    return this.run(async () => {
      const keys = new Set<string>();
      let cursor = '0';
      do {
        const [next, batch] = await this.cmd.scan(cursor, 'MATCH', escapeGlob(prefix) + '*', 'COUNT', 1000);
        cursor = next;
        for (const key of batch) if (!isSiblingKey(key)) keys.add(key);
      } while (cursor !== '0');

      const out = new Map<string, string>();
      const all = [...keys];
      for (let i = 0; i < all.length; i += 500) {
        const chunk = all.slice(i, i + 500);
        // MGET gives null for keys gone since the scan and for non-string keys (the expiries set).
        const values = await this.cmd.mget(...chunk);
        chunk.forEach((key, j) => {
          const value = values[j];
          if (typeof value === 'string') out.set(key, value);
        });
      }
      return out;
    });
  }

  async lock(key: string, expirationSeconds = 10_000): Promise<boolean> {
    try {
      await this.setKey(key, '', { expirationSeconds });
      return true;
    } catch (err) {
      if (err instanceof KeyExistsError) return false;
      throw err;
    }
  }

  onKeyChange(prefix: string, callback: (change: KeyChange) => void): () => void {
    return this.watchers.add(prefix, callback);
  }

  async close(): Promise<void> {
    if (!this.closing) {
      this.closed = true;
      clearInterval(this.sweepTimer);
      this.closing = (async () => {
        await Promise.allSettled([...this.inFlight]);
        this.watchers.clear();
        await Promise.all([closeRedis(this.cmd), closeRedis(this.sub)]);
      })();
    }
    return this.closing;
  }

  /** Runs a Redis operation; any failure is a retryable "Redis is unavailable". */
  private async run<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      throw redisUnavailable(err);
    }
  }

  /**
   * Our writes come back to our own watchers through the channel, so at startup a write waits
   * (briefly) for the subscription to exist.
   */
  private async subscriptionSettled(): Promise<void> {
    if (this.subscribed) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.firstSubscription, new Promise<void>((resolve) => (timer = setTimeout(resolve, SUBSCRIBE_WAIT_MS)))]);
    clearTimeout(timer);
  }

  private async subscribe(): Promise<void> {
    try {
      await this.sub.subscribe(this.layout.channel);
      await this.sub.psubscribe(this.layout.keyspacePattern(this.config.REDIS_DB));
      this.logger.debug({ channel: this.layout.channel }, 'subscribed to orchestrator events');
      this.subscribed = true;
      this.markSubscribed();
    } catch (err) {
      if (this.closed) return;
      // A ready connection without its subscriptions would miss events silently: start over.
      this.logger.warn({ err: errorMessage(err) }, 'subscribing to orchestrator events failed; reconnecting');
      this.sub.disconnect(true);
    }
  }

  private async setUpKeyspaceEvents(): Promise<void> {
    try {
      await enableExpiredKeyspaceEvents(this.cmd, this.logger);
    } catch (err) {
      // Connection lost meanwhile: the next 'ready' runs this again.
      this.logger.debug({ err: errorMessage(err) }, 'keyspace event setup interrupted');
    }
  }

  private onChannelMessage(channel: string, message: string): void {
    if (channel !== this.layout.channel || this.closed) return;
    const change = parseKeyChange(message);
    if (!change) {
      // Quay's canceller bug (Q4) killed its subscriber thread on a bad message; we skip it.
      this.logger.warn({ channel, message: message.slice(0, 200) }, 'ignoring a malformed orchestrator event');
      return;
    }
    // EXPIRE on the channel is for other tools. Our watchers hear it only from the expiring instance.
    if (change.event === KeyEvent.EXPIRE) return;
    this.emit(change);
  }

  private onKeyspaceMessage(channel: string, message: string): void {
    if (message !== 'expired' || this.closed) return;
    const key = this.layout.keyFromKeyspaceChannel(this.config.REDIS_DB, channel);
    if (key === undefined) return;
    this.track(
      this.expire(key).catch((err: unknown) => {
        this.logger.warn({ key, err: errorMessage(err) }, 'handling an expiry failed; the sweep will retry it');
      }),
    );
  }

  /** Expires `key` if its deadline passed and nobody else did; only then this instance fires EXPIRE. */
  private async expire(key: string): Promise<boolean> {
    const value = await expireKeyScript.run(this.cmd, this.layout.scriptKeys(key), [EXPIRED_MARKER_TTL_MS, this.layout.channel]);
    if (typeof value !== 'string') return false;
    this.emit({ event: KeyEvent.EXPIRE, key, value });
    return true;
  }

  /** Expires every key whose deadline passed without its expiry being handled. */
  private async sweep(): Promise<void> {
    if (this.sweeping || this.closed) return;
    this.sweeping = true;
    try {
      this.checkSubscriber();
      if (this.cmd.status !== 'ready') return;
      for (let round = 0; round < SWEEP_ROUNDS; round++) {
        const due = (await dueKeysScript.run(this.cmd, [this.layout.expiries], [SWEEP_BATCH])) as string[];
        for (const key of due) {
          if (await this.expire(key)) this.logger.debug({ key }, 'expiry found by the sweep');
        }
        if (due.length < SWEEP_BATCH) break;
      }
    } catch (err) {
      this.logger.debug({ err: errorMessage(err) }, 'expiry sweep failed; retrying at the next interval');
    } finally {
      this.sweeping = false;
    }
  }

  /**
   * A connection that died without a TCP reset looks open for many minutes, and a subscriber never
   * sends anything on its own. A PING that gets no answer forces a reconnect (Quay's redis-py does
   * the same with health_check_interval).
   */
  private checkSubscriber(): void {
    if (this.sub.status !== 'ready') return;
    this.sub.ping().catch(() => {
      if (!this.closed && this.sub.status === 'ready') this.sub.disconnect(true);
    });
  }

  private track(work: Promise<unknown>): void {
    const done = work.then(
      () => undefined,
      () => undefined,
    );
    this.inFlight.add(done);
    void done.finally(() => this.inFlight.delete(done));
  }

  private emit(change: KeyChange): void {
    this.watchers.emit(change);
  }
}

/** An event from the channel: Quay's `{"event": n, "key": ..., "value": ...}`. */
function parseKeyChange(message: string): KeyChange | undefined {
  let data: unknown;
  try {
    data = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof data !== 'object' || data === null) return undefined;
  const { event, key, value } = data as Record<string, unknown>;
  if (event !== KeyEvent.CREATE && event !== KeyEvent.SET && event !== KeyEvent.DELETE && event !== KeyEvent.EXPIRE) return undefined;
  if (typeof key !== 'string' || typeof value !== 'string') return undefined;
  return { event, key, value };
}


function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
