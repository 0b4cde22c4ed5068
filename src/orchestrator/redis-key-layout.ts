/**
 * Where the Redis orchestrator keeps things (reference §3.3), for one ORCHESTRATOR_PREFIX `P`:
 *
 * | key                     | value                  | TTL                              |
 * |-------------------------|------------------------|----------------------------------|
 * | `<key>`                 | the value              | expiration + 1 day (safety net)  |
 * | `<key>/expiring`        | `""`                   | the real expiration              |
 * | `<key>/expired`         | the value at expiry    | 1 day (Quay: none, Q8)           |
 * | `P/expiries` (zset)     | `<key>` → deadline ms  | none (ours: drives the sweep)    |
 * | channel `P/orchestrator_events` (`orchestrator_events` with no prefix)                |
 */
export const EXPIRING_SUFFIX = '/expiring';
export const EXPIRED_SUFFIX = '/expired';

/** How long the main key outlives its `/expiring` sibling, so its value can be read at expiry. */
export const MAIN_KEY_GRACE_MS = 86_400_000;
/** How long the `/expired` marker stays (Quay keeps it forever and leaks one per expiry, Q8). */
export const EXPIRED_MARKER_TTL_MS = 86_400_000;

/** `*`, `?`, `[`, `]` and `\` match literally in a Redis glob pattern once escaped. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => '\\' + c);
}

/** True for the helper keys that sit next to a main key. */
export function isSiblingKey(key: string): boolean {
  return key.endsWith(EXPIRING_SUFFIX) || key.endsWith(EXPIRED_SUFFIX);
}

export class RedisKeyLayout {
  /** `P` with one trailing `/` (or empty): every key the manager writes starts with it. */
  readonly keyPrefix: string;
  /** The pub/sub channel of CREATE/SET/DELETE/EXPIRE events. */
  readonly channel: string;
  /** Sorted set of key → expiry deadline (server ms). */
  readonly expiries: string;

  constructor(orchestratorPrefix: string) {
    const base = orchestratorPrefix.replace(/^\/+|\/+$/g, '');
    this.keyPrefix = base === '' ? '' : base + '/';
    this.channel = this.keyPrefix + 'orchestrator_events';
    this.expiries = this.keyPrefix + 'expiries';
  }

  /** The keys one main key's scripts touch: main, `/expiring`, `/expired`, and the expiries set. */
  scriptKeys(key: string): [string, string, string, string] {
    return [key, key + EXPIRING_SUFFIX, key + EXPIRED_SUFFIX, this.expiries];
  }

  /**
   * The keyspace pattern for our `/expiring` keys only. Quay subscribes to `*\/expiring` in the
   * whole db, so installations with different prefixes steal each other's expiries (Q9).
   */
  keyspacePattern(db: number): string {
    return `__keyspace@${db}__:${escapeGlob(this.keyPrefix)}*${EXPIRING_SUFFIX}`;
  }

  /** The main key behind a keyspace channel `__keyspace@<db>__:<key>/expiring`, if it is one. */
  keyFromKeyspaceChannel(db: number, channel: string): string | undefined {
    const head = `__keyspace@${db}__:`;
    if (!channel.startsWith(head) || !channel.endsWith(EXPIRING_SUFFIX)) return undefined;
    return channel.slice(head.length, -EXPIRING_SUFFIX.length);
  }
}
