import type { Redis } from 'ioredis';
import type { Readable } from 'node:stream';
import { closeRedis, createRedis, watchConnectionHealth, type RedisOrchestratorConfig } from '../redis/redis-connection.js';
import { silentLogger, type Logger } from '../util/logger.js';
import type { BuildRecord, LogEntry } from './build-record.js';
import type { BuildStore } from './build-store.js';
import { RedisBuildContexts } from './redis-build-contexts.js';
import { redisBuildKeys, type RedisBuildKeys } from './redis-build-keys.js';
import { defineRecordScripts, RedisBuildRecords } from './redis-build-records.js';
import { RedisLogWatcher } from './redis-log-watcher.js';
import { RedisLogWriter } from './redis-log-writer.js';
import { repliesOrThrow, withDeadline } from './redis-store-io.js';

export interface RedisBuildStoreOptions {
  /** ORCHESTRATOR_PREFIX. Build logs ignore it: they live at Quay's own `builds/<uuid>/logs`. */
  prefix: string;
  logger?: Logger;
  /** TTL of a build's log list, renewed on every append. Default 7 days, as Quay. */
  logRetentionSeconds?: number;
  /** TTL of a build record, renewed on every update. Default: kept until deleted. */
  recordRetentionSeconds?: number;
  /** TTL of an uploaded context. Default 1 day. */
  contextRetentionSeconds?: number;
  /** The longest any operation waits for Redis before failing with REDIS_UNAVAILABLE. Default 3000 ms. */
  timeoutMs?: number;
  /** A log flush starts at once when this many entries wait. Default 1000. */
  logBatchMaxEntries?: number;
  /** The clock for updatedAt. */
  now?: () => number;
}

const DAY = 86_400;

/**
 * Build records, logs and uploaded contexts in Redis, shared by every manager instance that uses the
 * same Redis and prefix. Key layout: redis-build-keys.ts. Three connections: commands (records and
 * logs), a subscriber (opened on the first log watcher) and one for context uploads (opened on first
 * use), so a large upload never queues ahead of a worker's log lines.
 */
export class RedisBuildStore implements BuildStore {
  readonly keys: RedisBuildKeys;
  private readonly cmd: Redis;
  private blob?: Redis;
  private readonly records: RedisBuildRecords;
  private readonly writer: RedisLogWriter;
  private readonly watcher: RedisLogWatcher;
  private readonly contexts: RedisBuildContexts;
  private readonly timeoutMs: number;
  private readonly log: Logger;
  private closed = false;

  constructor(
    private readonly config: RedisOrchestratorConfig,
    opts: RedisBuildStoreOptions,
  ) {
    this.keys = redisBuildKeys(opts.prefix);
    this.timeoutMs = opts.timeoutMs ?? 3000;
    this.log = (opts.logger ?? silentLogger()).child({ component: 'build-store' });
    this.cmd = this.connect('build-store');
    defineRecordScripts(this.cmd);
    RedisLogWriter.define(this.cmd);

    this.records = new RedisBuildRecords(this.cmd, this.keys, {
      now: opts.now ?? Date.now,
      retentionSeconds: opts.recordRetentionSeconds ?? 0,
    });
    this.watcher = new RedisLogWatcher(() => this.connect('build-logs-sub'), this.log, this.timeoutMs);
    this.writer = new RedisLogWriter(this.cmd, this.keys, {
      ttlSeconds: opts.logRetentionSeconds ?? 7 * DAY,
      maxBatchEntries: opts.logBatchMaxEntries ?? 1000,
      gate: () => this.watcher.settled(),
    });
    this.contexts = new RedisBuildContexts(() => (this.blob ??= this.connect('build-contexts')), this.keys, {
      ttlSeconds: opts.contextRetentionSeconds ?? DAY,
      timeoutMs: this.timeoutMs,
    });
  }

  create(record: BuildRecord): Promise<void> {
    return withDeadline(this.records.create(record), this.timeoutMs);
  }

  get(id: string): Promise<BuildRecord | undefined> {
    return withDeadline(this.records.get(id), this.timeoutMs);
  }

  list(opts: { limit?: number } = {}): Promise<BuildRecord[]> {
    return withDeadline(this.records.list(opts.limit), this.timeoutMs);
  }

  update(id: string, patch: Partial<BuildRecord>): Promise<BuildRecord | undefined> {
    return withDeadline(this.records.update(id, patch), this.timeoutMs);
  }

  appendLogs(id: string, entries: LogEntry[]): Promise<number> {
    return withDeadline(this.writer.append(id, entries), this.timeoutMs);
  }

  readLogs(id: string, start: number): Promise<{ total: number; logs: LogEntry[] }> {
    return withDeadline(this.read(id, start), this.timeoutMs);
  }

  watchLogs(id: string, listener: (entry: LogEntry, index: number) => void): () => void {
    return this.watcher.watch(this.keys.logChannel(id), listener);
  }

  saveContext(id: string, data: Readable, maxBytes: number): Promise<number> {
    return this.contexts.save(id, data, maxBytes);
  }

  openContext(id: string): Promise<Readable | undefined> {
    return this.contexts.open(id);
  }

  deleteContext(id: string): Promise<void> {
    return this.contexts.delete(id);
  }

  /** Sends what the log write-behind still holds, then closes every connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await withDeadline(this.writer.idle(), this.timeoutMs).catch(() => undefined);
    this.watcher.close();
    await Promise.all([closeRedis(this.cmd, this.timeoutMs), this.blob && closeRedis(this.blob, this.timeoutMs)]);
  }

  private async read(id: string, start: number): Promise<{ total: number; logs: LogEntry[] }> {
    // A follower watches, then reads the backlog: wait until its SUBSCRIBE is in place, so an entry
    // is either in this read or in a published batch it will receive.
    const gate = this.watcher.settled();
    if (gate) await gate;
    const key = this.keys.logs(id);
    // LRANGE with a negative start counts from the end; the memory store clamps to 0.
    const [total, raw] = repliesOrThrow(await this.cmd.multi().llen(key).lrange(key, Math.max(0, start), -1).exec()) as [number, string[]];
    return { total, logs: raw.map(parseEntry) };
  }

  private connect(name: string): Redis {
    return watchConnectionHealth(createRedis(this.config, name), this.log, name);
  }
}

/** Quay's entries are JSON; anything else written to the list is shown as a plain message. */
function parseEntry(raw: string): LogEntry {
  try {
    return JSON.parse(raw) as LogEntry;
  } catch {
    return { message: raw };
  }
}
