import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { JobEvent } from '../../machines/job-events.js';
import { InfraError } from '../errors/buildman-error.js';
import { slashJoin } from '../orchestrator/orchestrator.js';
import { LuaScript } from '../redis/lua-script.js';
import { closeRedis, createRedis, redisUnavailable, watchConnectionHealth, type RedisOrchestratorConfig } from '../redis/redis-connection.js';
import type { Logger } from '../util/logger.js';
import type { ActorStatus, Coordinator } from './coordinator.js';

/** Redis's clock in ms, the one clock every instance judges leases by. */
const NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/**
 * Takes ownership of a build unless a live instance owns it.
 * KEYS: owner key, instances zset, our owned set. ARGV: our id, build id, owned-set prefix.
 */
const ACQUIRE = new LuaScript(
  'acquire',
  NOW +
    `
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return 1 end
if cur then
  local lease = redis.call('ZSCORE', KEYS[2], cur)
  if lease and tonumber(lease) > now then return 0 end
  redis.call('SREM', ARGV[3] .. cur, ARGV[2])
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[2])
return 1`,
  3,
);

/** KEYS: owner key, our owned set. ARGV: our id, build id. */
const RELEASE = new LuaScript(
  'release',
  `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1`,
  2,
);

/** KEYS: instances zset. ARGV: our id, lease ms. Returns instances whose lease ran out. */
const RENEW_AND_FIND_DEAD = new LuaScript(
  'renewAndFindDead',
  NOW +
    `
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now)`,
  1,
);

/** KEYS: owner key, instances zset. Returns the owner if its lease is live. */
const LIVE_OWNER = new LuaScript(
  'liveOwner',
  NOW +
    `
local cur = redis.call('GET', KEYS[1])
if not cur then return false end
local lease = redis.call('ZSCORE', KEYS[2], cur)
if lease and tonumber(lease) > now then return cur end
return false`,
  2,
);

/** KEYS: lock. ARGV: token. */
const UNLOCK = new LuaScript('unlock', `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`, 1);

interface Envelope {
  rid: string;
  from: string;
  buildId: string;
  event: JobEvent;
}

interface Reply {
  rid: string;
  status?: ActorStatus | null;
  error?: string;
}

export interface RedisCoordinatorOptions {
  prefix: string;
  logger: Logger;
  /** How long an instance counts as alive after its last renewal. Default 3000 ms. */
  leaseMs?: number;
  /** How often the lease is renewed and dead instances are looked for. Default 500 ms. */
  tickMs?: number;
  /** How long a forwarded event waits for the owner's answer. Default 5000 ms. */
  forwardTimeoutMs?: number;
}

/**
 * Ownership of build actors across manager instances that share one Redis.
 * - `<P>instances`: a sorted set of instance id → lease end (ms); each instance renews its own.
 * - `<P>owner/<build>`: the owning instance; `<P>owned/<instance>`: the builds it owns.
 * - `<P>inbox/<instance>`: a stream of events forwarded to that instance, read in order.
 * - `<P>replies/<instance>`: a channel on which owners answer forwarded events.
 */
export class RedisCoordinator implements Coordinator {
  readonly instanceId = randomUUID();
  private readonly cmd: Redis;
  private readonly inboxReader: Redis;
  private readonly sub: Redis;
  private readonly keys;
  private readonly pending = new Map<string, { resolve: (s: ActorStatus | undefined) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  private forwardedHandler?: (buildId: string, event: JobEvent) => Promise<ActorStatus | undefined>;
  private orphanHandler?: (buildIds: string[]) => Promise<void>;
  private ticker?: NodeJS.Timeout;
  private closed = false;
  private reaping = false;
  private readonly leaseMs: number;
  private readonly forwardTimeoutMs: number;
  private readonly log: Logger;

  constructor(config: RedisOrchestratorConfig, private readonly opts: RedisCoordinatorOptions) {
    const p = (name: string) => slashJoin(opts.prefix, name);
    this.keys = {
      instances: p('instances'),
      owner: (b: string) => `${p('owner')}/${b}`,
      ownedPrefix: `${p('owned')}/`,
      owned: (i: string) => `${p('owned')}/${i}`,
      inbox: (i: string) => `${p('inbox')}/${i}`,
      replies: (i: string) => `${p('replies')}/${i}`,
      schedulerLock: p('scheduler_lock'),
    };
    this.leaseMs = opts.leaseMs ?? 3000;
    this.forwardTimeoutMs = opts.forwardTimeoutMs ?? 5000;
    this.log = opts.logger.child({ component: 'coordinator', instance: this.instanceId });
    this.cmd = watchConnectionHealth(createRedis(config, 'coordinator'), this.log, 'coordinator');
    this.inboxReader = watchConnectionHealth(createRedis(config, 'inbox'), this.log, 'inbox');
    this.sub = watchConnectionHealth(createRedis(config, 'replies'), this.log, 'replies');
    this.sub.on('message', (_channel: string, message: string) => this.onReply(message));
  }

  /** Registers this instance and starts renewing, reaping, and reading the inbox. */
  async start(): Promise<void> {
    await this.sub.subscribe(this.keys.replies(this.instanceId));
    await this.tick();
    this.ticker = setInterval(() => void this.tick(), this.opts.tickMs ?? 500);
    this.ticker.unref();
    void this.readInbox();
  }

  async acquire(buildId: string): Promise<boolean> {
    try {
      const won = await ACQUIRE.run(this.cmd, [this.keys.owner(buildId), this.keys.instances, this.keys.owned(this.instanceId)], [this.instanceId, buildId, this.keys.ownedPrefix]);
      return won === 1;
    } catch (err) {
      throw redisUnavailable(err);
    }
  }

  async release(buildId: string): Promise<void> {
    try {
      await RELEASE.run(this.cmd, [this.keys.owner(buildId), this.keys.owned(this.instanceId)], [this.instanceId, buildId]);
    } catch (err) {
      throw redisUnavailable(err);
    }
  }

  async ownerOf(buildId: string): Promise<string | undefined> {
    try {
      const owner = (await LIVE_OWNER.run(this.cmd, [this.keys.owner(buildId), this.keys.instances])) as string | null;
      return owner ?? undefined;
    } catch (err) {
      throw redisUnavailable(err);
    }
  }

  async forward(owner: string, buildId: string, event: JobEvent): Promise<ActorStatus | undefined> {
    const rid = randomUUID();
    const envelope: Envelope = { rid, from: this.instanceId, buildId, event };
    const answer = new Promise<ActorStatus | undefined>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(rid);
        reject(new InfraError(`build ${buildId}: owner ${owner} did not answer within ${this.forwardTimeoutMs} ms`, 'OWNER_SILENT'));
      }, this.forwardTimeoutMs);
      this.pending.set(rid, { resolve, reject, timer });
    });
    try {
      await this.cmd.xadd(this.keys.inbox(owner), 'MAXLEN', '~', 10_000, '*', 'm', JSON.stringify(envelope));
    } catch (err) {
      const p = this.pending.get(rid);
      if (p) clearTimeout(p.timer);
      this.pending.delete(rid);
      throw redisUnavailable(err);
    }
    return answer;
  }

  onForwarded(handler: (buildId: string, event: JobEvent) => Promise<ActorStatus | undefined>): void {
    this.forwardedHandler = handler;
  }

  onOrphans(handler: (buildIds: string[]) => Promise<void>): void {
    this.orphanHandler = handler;
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const token = randomUUID();
    for (let i = 0; ; i++) {
      let got: string | null;
      try {
        got = await this.cmd.set(this.keys.schedulerLock, token, 'PX', 10_000, 'NX');
      } catch (err) {
        throw redisUnavailable(err);
      }
      if (got === 'OK') break;
      if (this.closed) throw new InfraError('coordinator closed', 'CLOSED');
      await new Promise((r) => setTimeout(r, Math.min(50, 5 + i * 5)));
    }
    try {
      return await fn();
    } finally {
      await UNLOCK.run(this.cmd, [this.keys.schedulerLock], [token]).catch(() => {});
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.ticker);
    for (const [, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(new InfraError('coordinator closed', 'CLOSED'));
    }
    this.pending.clear();
    // Leaving the instance set at once lets others take over our builds without waiting out the lease.
    await this.cmd.zrem(this.keys.instances, this.instanceId).catch(() => {});
    this.inboxReader.disconnect();
    await Promise.all([closeRedis(this.cmd), closeRedis(this.sub)]);
  }

  /** Renews our lease and takes over builds of instances whose lease ran out. */
  private async tick(): Promise<void> {
    if (this.closed) return;
    let dead: string[];
    try {
      dead = ((await RENEW_AND_FIND_DEAD.run(this.cmd, [this.keys.instances], [this.instanceId, this.leaseMs])) as string[]).filter(
        (id) => id !== this.instanceId,
      );
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'cannot renew instance lease');
      return;
    }
    if (dead.length === 0 || this.reaping || !this.orphanHandler) return;
    this.reaping = true;
    try {
      for (const id of dead) {
        const orphans = await this.cmd.smembers(this.keys.owned(id));
        if (orphans.length) {
          this.log.warn({ deadInstance: id, builds: orphans.length }, 'taking over builds of a dead instance');
          await this.orphanHandler(orphans);
        }
        // Forget the instance once nothing of it is left to adopt.
        if ((await this.cmd.scard(this.keys.owned(id))) === 0) {
          await this.cmd.multi().zrem(this.keys.instances, id).del(this.keys.owned(id), this.keys.inbox(id)).exec();
        }
      }
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'takeover pass failed; retrying');
    } finally {
      this.reaping = false;
    }
  }

  /** Reads forwarded events in order, one at a time, and answers each. */
  private async readInbox(): Promise<void> {
    // Our inbox is new (our id is new each start), so read it from the beginning.
    let last = '0';
    const inbox = this.keys.inbox(this.instanceId);
    while (!this.closed) {
      let res: Array<[string, Array<[string, string[]]>]> | null;
      try {
        res = (await this.inboxReader.xread('COUNT', 100, 'BLOCK', 1000, 'STREAMS', inbox, last)) as typeof res;
      } catch (err) {
        if (this.closed) return;
        this.log.warn({ err: (err as Error).message }, 'inbox read failed; retrying');
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (!res) continue;
      for (const [id, fields] of res[0][1]) {
        last = id;
        const envelope = JSON.parse(fields[1]) as Envelope;
        const reply: Reply = { rid: envelope.rid };
        try {
          reply.status = (await this.forwardedHandler?.(envelope.buildId, envelope.event)) ?? null;
        } catch (err) {
          reply.error = err instanceof Error ? err.message : String(err);
        }
        await this.cmd.publish(this.keys.replies(envelope.from), JSON.stringify(reply)).catch(() => {});
      }
    }
  }

  private onReply(message: string): void {
    const reply = JSON.parse(message) as Reply;
    const p = this.pending.get(reply.rid);
    if (!p) return;
    clearTimeout(p.timer);
    this.pending.delete(reply.rid);
    if (reply.error) p.reject(new InfraError(reply.error, 'OWNER_FAILED'));
    else p.resolve(reply.status ?? undefined);
  }
}
