import type { Redis, Result } from 'ioredis';
import { RequestError } from '../errors/buildman-error.js';
import type { BuildRecord } from './build-record.js';
import type { RedisBuildKeys } from './redis-build-keys.js';

/**
 * The hash field that holds a record's index member. Record properties never start with `~`, and a
 * stale member (left by a record that expired and was created again) is recognised by not matching it.
 */
const INDEX_FIELD = '~index';

/**
 * KEYS: record, index, sequence. ARGV: id, createdAt, TTL seconds (0 = none), field/value pairs.
 * The sequence breaks createdAt ties so that, as in the memory store, the later of two builds created
 * in the same millisecond lists first (ZREVRANGE orders equal scores by member, descending).
 */
const CREATE = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local member = string.format('%016d', redis.call('INCR', KEYS[3])) .. ':' .. ARGV[1]
redis.call('HSET', KEYS[1], '${INDEX_FIELD}', member, unpack(ARGV, 4))
if tonumber(ARGV[3]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[3]) end
redis.call('ZADD', KEYS[2], ARGV[2], member)
return 1`;

/**
 * KEYS: record, index. ARGV: TTL seconds (0 = keep), new createdAt or '', count of fields to delete,
 * those fields, then field/value pairs to set (updatedAt at least). Returns the merged hash, or nil.
 */
const UPDATE = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local ndel = tonumber(ARGV[3])
if ndel > 0 then redis.call('HDEL', KEYS[1], unpack(ARGV, 4, 3 + ndel)) end
redis.call('HSET', KEYS[1], unpack(ARGV, 4 + ndel))
if ARGV[2] ~= '' then
  local member = redis.call('HGET', KEYS[1], '${INDEX_FIELD}')
  if member then redis.call('ZADD', KEYS[2], 'XX', ARGV[2], member) end
end
if tonumber(ARGV[1]) > 0 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return redis.call('HGETALL', KEYS[1])`;

/**
 * KEYS: index. ARGV: record key prefix, limit (-1 = all). Newest first; index members whose record
 * is gone (retention) or belongs to a later build of the same id are removed on the way.
 */
const LIST = `
local limit = tonumber(ARGV[2])
local out = {}
local pos = 0
while limit < 0 or #out < limit do
  local page = redis.call('ZREVRANGE', KEYS[1], pos, pos + 99)
  if #page == 0 then break end
  pos = pos + #page
  for _, member in ipairs(page) do
    local key = ARGV[1] .. string.sub(member, 18)
    if redis.call('HGET', key, '${INDEX_FIELD}') == member then
      out[#out + 1] = redis.call('HGETALL', key)
      if #out == limit then break end
    else
      redis.call('ZREM', KEYS[1], member)
      pos = pos - 1
    end
  end
end
return out`;

declare module 'ioredis' {
  interface RedisCommander<Context> {
    buildmanCreateRecord(record: string, index: string, sequence: string, ...args: Array<string | number>): Result<number, Context>;
    buildmanUpdateRecord(record: string, index: string, ...args: Array<string | number>): Result<string[] | null, Context>;
    buildmanListRecords(index: string, recordPrefix: string, limit: number): Result<string[][], Context>;
  }
}

export function defineRecordScripts(redis: Redis): void {
  redis.defineCommand('buildmanCreateRecord', { numberOfKeys: 3, lua: CREATE });
  redis.defineCommand('buildmanUpdateRecord', { numberOfKeys: 2, lua: UPDATE });
  redis.defineCommand('buildmanListRecords', { numberOfKeys: 1, lua: LIST });
}

/**
 * Build records as Redis hashes, one JSON-encoded field per top-level property. A hash lets `update`
 * merge a patch inside Redis with HSET, atomically, without decoding JSON in Lua (whose cjson turns
 * `[]` into `{}` and rounds numbers).
 */
export class RedisBuildRecords {
  constructor(
    private readonly redis: Redis,
    private readonly keys: RedisBuildKeys,
    private readonly opts: { now: () => number; retentionSeconds: number },
  ) {}

  async create(record: BuildRecord): Promise<void> {
    const { id, createdAt } = record;
    const created = await this.redis.buildmanCreateRecord(
      this.keys.record(id),
      this.keys.index,
      this.keys.sequence,
      id,
      createdAt,
      this.opts.retentionSeconds,
      ...encodeFields(record),
    );
    if (created !== 1) throw new RequestError(`Build ${id} already exists`, 409, 'id');
  }

  async get(id: string): Promise<BuildRecord | undefined> {
    const hash = await this.redis.hgetall(this.keys.record(id));
    return Object.keys(hash).length ? decodeRecord(Object.entries(hash)) : undefined;
  }

  async list(limit?: number): Promise<BuildRecord[]> {
    const rows = await this.redis.buildmanListRecords(this.keys.index, this.keys.recordPrefix, limit === undefined ? -1 : Math.max(0, limit));
    return rows.map((flat) => decodeRecord(pairs(flat)));
  }

  async update(id: string, patch: Partial<BuildRecord>): Promise<BuildRecord | undefined> {
    // As in the memory store: the id never changes, and updatedAt comes from our clock.
    const { id: _id, updatedAt: _updatedAt, ...rest } = patch;
    const removed = Object.keys(rest).filter((k) => rest[k as keyof typeof rest] === undefined && !k.startsWith('~'));
    const set = encodeFields({ ...rest, updatedAt: this.opts.now() });
    const createdAt = rest.createdAt === undefined ? '' : rest.createdAt;
    const flat = await this.redis.buildmanUpdateRecord(
      this.keys.record(id),
      this.keys.index,
      this.opts.retentionSeconds,
      createdAt,
      removed.length,
      ...removed,
      ...set,
    );
    return flat ? decodeRecord(pairs(flat)) : undefined;
  }
}

/** field, JSON value, field, JSON value, … — undefined properties are left out. */
function encodeFields(obj: object): string[] {
  const out: string[] = [];
  for (const [field, value] of Object.entries(obj)) {
    if (value === undefined || field.startsWith('~')) continue;
    out.push(field, JSON.stringify(value));
  }
  return out;
}

function pairs(flat: string[]): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i], flat[i + 1]]);
  return out;
}

/**
 * Property order for decoded records. Redis returns hash fields in no fixed order once a value is
 * longer than 64 bytes, and the order shows in the API's JSON, so it is put back in declaration order.
 */
const FIELD_ORDER: ReadonlyArray<keyof BuildRecord> = [
  'id', 'repository', 'tags', 'dockerfilePath', 'context', 'source', 'pullCredentials', 'phase', 'state',
  'createdAt', 'updatedAt', 'attempt', 'executor', 'executionId', 'queueItemId', 'reason',
];
const rank = (field: string) => {
  const i = FIELD_ORDER.indexOf(field as keyof BuildRecord);
  return i < 0 ? FIELD_ORDER.length : i;
};

function decodeRecord(fields: Array<[string, string]>): BuildRecord {
  const record: Record<string, unknown> = {};
  const ordered = fields.filter(([field]) => field !== INDEX_FIELD).sort(([a], [b]) => rank(a) - rank(b));
  for (const [field, json] of ordered) record[field] = JSON.parse(json);
  return record as unknown as BuildRecord;
}
