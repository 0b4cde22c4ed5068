/**
 * How late a dead worker is noticed: a job's liveness key is written with a TTL (as a heartbeat
 * does) and never touched again; we measure from the moment the TTL ran out to the EXPIRE event
 * reaching the manager. Baseline in the same run: a raw `SET key EX` with Redis keyspace
 * notifications, the floor any Redis-TTL design sits on.
 *
 *   npm run build && node dist/bench/expiry-detection.js [jobs] [ttlSeconds]
 */
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import { JobRegistry } from '../src/orchestrator/job-registry.js';
import { RedisOrchestrator } from '../src/orchestrator/redis-orchestrator.js';
import { silentLogger } from '../src/util/logger.js';
import { quantile } from './stats.js';

const jobs = Number(process.argv[2] ?? 500);
const ttl = Number(process.argv[3] ?? 2);
const config = {
  kind: 'redis' as const,
  REDIS_HOST: process.env.REDIS_HOST ?? '127.0.0.1',
  REDIS_PORT: Number(process.env.REDIS_PORT ?? 6379),
  REDIS_DB: 0,
  REDIS_SSL: false,
  REDIS_SKIP_KEYSPACE_EVENT_SETUP: false,
};

/** Leaves nothing behind (the expired markers would otherwise stay a day). */
async function deleteUnder(prefix: string): Promise<void> {
  const redis = new Redis(config.REDIS_PORT, config.REDIS_HOST);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
}

async function baseline(): Promise<number[]> {
  const prefix = `bench/raw-${randomBytes(4).toString('hex')}/`;
  const cmd = new Redis(config.REDIS_PORT, config.REDIS_HOST);
  const sub = new Redis(config.REDIS_PORT, config.REDIS_HOST);
  await cmd.config('SET', 'notify-keyspace-events', 'KEx');
  const deadlines = new Map<string, number>();
  const lags: number[] = [];
  await sub.psubscribe(`__keyevent@0__:expired`);
  const done = new Promise<void>((resolve) =>
    sub.on('pmessage', (_p, _c, key: string) => {
      const d = deadlines.get(key);
      if (d === undefined) return;
      lags.push(Date.now() - d);
      deadlines.delete(key);
      if (deadlines.size === 0) resolve();
    }),
  );
  for (let i = 0; i < jobs; i++) {
    const key = `${prefix}${i}`;
    await cmd.set(key, 'x', 'EX', ttl);
    deadlines.set(key, Date.now() + ttl * 1000);
  }
  await done;
  sub.disconnect();
  cmd.disconnect();
  await deleteUnder(prefix);
  return lags;
}

async function buildman(): Promise<number[]> {
  const prefix = `bench/bm-${randomBytes(4).toString('hex')}/`;
  const orch = new RedisOrchestrator(config, { prefix, logger: silentLogger() });
  await orch.ready();
  const registry = new JobRegistry(orch, prefix, { machineMaxTime: 7200, heartbeatTtlSeconds: ttl });
  const deadlines = new Map<string, number>();
  const lags: number[] = [];
  const done = new Promise<void>((resolve) =>
    registry.onExpired((id) => {
      const d = deadlines.get(id);
      if (d === undefined) return;
      lags.push(Date.now() - d);
      deadlines.delete(id);
      if (deadlines.size === 0) resolve();
    }),
  );
  for (let i = 0; i < jobs; i++) {
    const id = `job-${i}`;
    await registry.create(id, { id: `q${i}`, body: '{}', retries_remaining: 3 }, 300);
    // The last heartbeat: from here the job has `ttl` seconds to live.
    await registry.heartbeat(id);
    deadlines.set(id, Date.now() + ttl * 1000);
  }
  await done;
  await orch.close();
  await deleteUnder(prefix);
  return lags;
}

const raw = await baseline();
const ours = await buildman();
const line = (name: string, xs: number[]) =>
  `  ${name.padEnd(34)} p50 ${quantile(xs, 0.5).toFixed(0).padStart(4)} ms   p99 ${quantile(xs, 0.99).toFixed(0).padStart(4)} ms   max ${Math.max(...xs).toFixed(0).padStart(4)} ms`;
console.log(`expiry detection: ${jobs} dead jobs, TTL ${ttl} s, lag past the TTL`);
console.log(line('baseline: raw SET EX + keyevent', raw));
console.log(line('buildman: job TTL → EXPIRE event', ours));
console.log(`  target: p99 within TTL + 1 s → ${quantile(ours, 0.99) < 1000 ? 'met' : 'NOT met'}`);
