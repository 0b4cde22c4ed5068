import type { Redis } from 'ioredis';
import { slashJoin } from '../orchestrator/orchestrator.js';
import { redisUnavailable } from '../redis/redis-connection.js';
import type { ActorStore, HistoryEntry, StoredSnapshot } from './actor-store.js';

/**
 * Actor persistence in Redis: `<P>actors/<id>/snapshot` (JSON) and `<P>actors/<id>/history`
 * (a stream, one entry per processed event). Both are written in one MULTI, so a snapshot never
 * runs ahead of its history. Finished builds keep both for `retentionSeconds`. Every save is
 * also announced on `<P>build_events` as `{build_id, state, event, at, final}`.
 */
export class RedisActorStore implements ActorStore {
  private readonly base: string;

  constructor(
    private readonly redis: Redis,
    opts: { prefix: string; retentionSeconds?: number; maxHistoryEntries?: number },
  ) {
    this.base = slashJoin(opts.prefix, 'actors') + '/';
    this.eventsChannel = slashJoin(opts.prefix, 'build_events');
    this.retentionSeconds = opts.retentionSeconds ?? 7 * 86_400;
    this.maxHistoryEntries = opts.maxHistoryEntries ?? 10_000;
  }

  private readonly retentionSeconds: number;
  /** Each saved change is announced here, so tools can follow the fleet's builds. */
  readonly eventsChannel: string;
  private readonly maxHistoryEntries: number;

  snapshotKey(buildId: string): string {
    return `${this.base}${buildId}/snapshot`;
  }

  historyKey(buildId: string): string {
    return `${this.base}${buildId}/history`;
  }

  async save(buildId: string, snapshot: StoredSnapshot, history: HistoryEntry[], opts: { final?: boolean } = {}): Promise<void> {
    const multi = this.redis.multi().set(this.snapshotKey(buildId), JSON.stringify(snapshot));
    for (const entry of history) {
      multi.xadd(
        this.historyKey(buildId),
        'MAXLEN',
        '~',
        this.maxHistoryEntries,
        '*',
        'at',
        String(entry.at),
        'event',
        JSON.stringify(entry.event),
        'state',
        entry.state,
        'v',
        String(entry.machineVersion),
      );
    }
    const last = history[history.length - 1];
    if (last) {
      multi.publish(this.eventsChannel, JSON.stringify({ build_id: buildId, state: last.state, event: last.event.type, at: last.at, final: !!opts.final }));
    }
    if (opts.final) {
      multi.expire(this.snapshotKey(buildId), this.retentionSeconds).expire(this.historyKey(buildId), this.retentionSeconds);
    }
    try {
      await multi.exec();
    } catch (err) {
      throw redisUnavailable(err);
    }
  }

  async load(buildId: string): Promise<StoredSnapshot | undefined> {
    let raw: string | null;
    try {
      raw = await this.redis.get(this.snapshotKey(buildId));
    } catch (err) {
      throw redisUnavailable(err);
    }
    return raw === null ? undefined : (JSON.parse(raw) as StoredSnapshot);
  }

  async history(buildId: string): Promise<HistoryEntry[]> {
    let rows: Array<[string, string[]]>;
    try {
      rows = (await this.redis.xrange(this.historyKey(buildId), '-', '+')) as Array<[string, string[]]>;
    } catch (err) {
      throw redisUnavailable(err);
    }
    return rows.map(([, fields]) => {
      const f = new Map<string, string>();
      for (let i = 0; i < fields.length; i += 2) f.set(fields[i], fields[i + 1]);
      return {
        at: Number(f.get('at')),
        event: JSON.parse(f.get('event') ?? '{"type":"?"}'),
        state: f.get('state') ?? '',
        machineVersion: Number(f.get('v')),
      };
    });
  }

  async close(): Promise<void> {}
}
