import type { Redis, Result } from 'ioredis';
import type { LogEntry } from './build-record.js';
import type { RedisBuildKeys } from './redis-build-keys.js';

/**
 * One flush, all builds in it. KEYS: each build's log list. ARGV: TTL seconds, then per build its
 * pub/sub channel and entry count, then every build's JSON entries in KEYS order.
 * Per build: RPUSH first and EXPIRE after, atomically, so even a one-entry list carries its TTL (Quay
 * sends EXPIRE before RPUSH, a no-op on a list that does not exist yet); then PUBLISH the batch with
 * its start index, which only RPUSH's reply knows (hence a script, not MULTI). One script call per
 * flush rather than one per build: per-build calls measured ~7 µs each inside Redis, and made the
 * store slower than plain RPUSHes (bench/log-append.ts).
 * RPUSH takes 1,000 entries at a time (Lua's unpack fails somewhere under 8,000 values).
 * Returns, per build, the list's new length, or the error that build met (the others still land).
 */
const APPEND = `
local ttl = ARGV[1]
local pos = 2 + 2 * #KEYS
local out = {}
for k = 1, #KEYS do
  local count = tonumber(ARGV[2 * k + 1])
  local last = pos + count - 1
  local len
  if count == 0 then len = redis.pcall('LLEN', KEYS[k]) end
  for i = pos, last, 1000 do
    len = redis.pcall('RPUSH', KEYS[k], unpack(ARGV, i, math.min(i + 999, last)))
    if type(len) == 'table' then break end
  end
  if type(len) == 'table' then
    out[k] = len.err
  else
    if count > 0 then
      redis.call('EXPIRE', KEYS[k], ttl)
      redis.call('PUBLISH', ARGV[2 * k], '{"start":' .. (len - count) .. ',"entries":[' .. table.concat(ARGV, ',', pos, last) .. ']}')
    end
    out[k] = len
  end
  pos = last + 1
end
return out`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    /** Array arguments are flattened by ioredis; passing them unspread keeps huge batches off the call stack. */
    buildmanAppendLogs(numberOfKeys: number, ...keysAndArgs: Array<string | number | Array<string | number>>): Result<Array<number | string>, Context>;
  }
}

/** What the write-behind holds for one build between flushes. */
interface PendingLogs {
  entries: string[];
  /** One per appendLogs call; `end` is how many of `entries` precede-and-include the call's own. */
  waiters: Array<{ end: number; resolve: (lastIndex: number) => void; reject: (err: unknown) => void }>;
}

export interface LogWriterOptions {
  ttlSeconds: number;
  /** Flush at once when this many entries wait, even while an earlier flush is in flight. */
  maxBatchEntries: number;
  /**
   * A promise while something must happen before the next flush is sent (a watcher's SUBSCRIBE
   * being confirmed, so that its own instance's next entries reach it).
   */
  gate?: () => Promise<void> | undefined;
}

/**
 * Write-behind for build logs. A worker streams its output line by line, and many builds stream at
 * once, so appends are grouped: entries wait while a flush is in flight (group commit) or for the
 * rest of the current tick when idle, and each flush is one script call for every build in it:
 * one round trip for the whole batch. A call resolves once its entries are in Redis.
 * Order per build is the call order: batches are taken whole, and one connection executes them in
 * the order they are sent.
 */
export class RedisLogWriter {
  private pending = new Map<string, PendingLogs>();
  private pendingEntries = 0;
  private scheduled = false;
  private gated = false;
  private inFlight = 0;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisBuildKeys,
    private readonly opts: LogWriterOptions,
  ) {}

  static define(redis: Redis): void {
    // The number of keys varies per call, so it is passed first.
    redis.defineCommand('buildmanAppendLogs', { lua: APPEND });
  }

  /** Resolves with the index of the last entry (length − 1) once the entries are in Redis. */
  append(id: string, entries: readonly LogEntry[]): Promise<number> {
    return new Promise<number>((resolve, reject) => {
      let pending = this.pending.get(id);
      if (!pending) this.pending.set(id, (pending = { entries: [], waiters: [] }));
      for (const entry of entries) pending.entries.push(JSON.stringify(entry));
      pending.waiters.push({ end: pending.entries.length, resolve, reject });
      this.pendingEntries += entries.length;

      if (this.pendingEntries >= this.opts.maxBatchEntries) {
        this.flush();
      } else if (!this.scheduled && this.inFlight === 0) {
        // Idle: wait only for the rest of this tick, so a burst of calls goes out together.
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
      // Otherwise the flush in flight sends these when it returns.
    });
  }

  /** Resolves when nothing is waiting or in flight (for close). */
  idle(): Promise<void> {
    if (this.pending.size === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private flush(): void {
    this.scheduled = false;
    if (this.pending.size === 0 || this.gated) return;
    const gate = this.opts.gate?.();
    if (gate) {
      this.gated = true;
      void gate.finally(() => {
        this.gated = false;
        this.flush();
      });
      return;
    }

    const batch = this.pending;
    this.pending = new Map();
    this.pendingEntries = 0;
    this.inFlight += 1;

    const builds = [...batch.values()];
    const keys = [...batch.keys()].map((id) => this.keys.logs(id));
    const heads = [...batch.keys()].flatMap((id, k) => [this.keys.logChannel(id), builds[k].entries.length]);
    this.redis.buildmanAppendLogs(keys.length, keys, this.opts.ttlSeconds, heads, builds.flatMap((b) => b.entries)).then(
      (lengths) => {
        builds.forEach(({ entries, waiters }, k) => {
          const length = lengths[k];
          if (typeof length !== 'number') {
            const err = new Error(`appending to ${keys[k]}: ${length}`);
            for (const w of waiters) w.reject(err);
            return;
          }
          const start = length - entries.length;
          for (const w of waiters) w.resolve(start + w.end - 1);
        });
      },
      (err: unknown) => {
        for (const { waiters } of builds) for (const w of waiters) w.reject(err);
      },
    ).finally(() => {
      this.inFlight -= 1;
      if (this.pending.size > 0) {
        if (this.inFlight === 0) this.flush();
      } else if (this.inFlight === 0) {
        for (const resolve of this.idleWaiters.splice(0)) resolve();
      }
    });
  }
}
