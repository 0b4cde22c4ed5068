/**
 * Build-log appends into Redis: the RedisBuildStore's write-behind against raw ioredis commands.
 *
 *   npm run build && node dist/bench/log-append.js [lines] [builds] [rounds]
 *
 * `lines` log lines (default 50,000) spread over `builds` builds (default 200). Every build is a
 * concurrent writer, as a quay-builder's log stream is, in two shapes:
 * - stream: each build appends its lines one at a time, awaiting each (concurrency = builds);
 * - burst: each build sends its lines in bursts of 25 concurrent appends (concurrency = builds × 25).
 * For each shape, in the same run and alternating round by round so machine noise hits all alike:
 * - baseline: a raw ioredis client, one `RPUSH builds/<id>/logs <json>` per line;
 * - quay-style: what Quay's buildlogs does per line, a pipeline of EXPIRE + RPUSH (no transaction);
 * - buildman: `RedisBuildStore.appendLogs(id, [entry])` per line (RPUSH + EXPIRE + PUBLISH, batched).
 * Prints the median wall time of `rounds` rounds, the throughput, the ratio to the baseline, the
 * median and p99 latency of one append, and the CPU time spent by this process and by Redis (wall
 * time on a shared machine is noisy; CPU time says what each approach costs).
 * Redis: 127.0.0.1:6379, or BENCH_REDIS_PORT. Every key written is deleted after its round.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import type { LogEntry } from '../src/builds/build-record.js';
import { RedisBuildStore } from '../src/builds/redis-build-store.js';
import type { RedisOrchestratorConfig } from '../src/redis/redis-connection.js';
import { median, quantile } from './stats.js';

const lines = Number(process.argv[2] ?? 50_000);
const builds = Number(process.argv[3] ?? 200);
const rounds = Number(process.argv[4] ?? 5);
const perBuild = Math.ceil(lines / builds);
const BURST = 25;
const port = Number(process.env.BENCH_REDIS_PORT ?? 6379);
const config: RedisOrchestratorConfig = {
  kind: 'redis',
  REDIS_HOST: '127.0.0.1',
  REDIS_PORT: port,
  REDIS_DB: 0,
  REDIS_SSL: false,
  REDIS_SKIP_KEYSPACE_EVENT_SETUP: true,
};

type Append = (id: string, entry: LogEntry) => Promise<unknown>;
type Shape = 'stream' | 'burst';
interface Run {
  ms: number;
  latencies: number[];
  /** CPU time this process spent (ms). */
  nodeCpu: number;
  /** CPU time Redis spent (ms), from INFO cpu: includes anything else using the same Redis. */
  redisCpu: number;
}


/** A line as the manager stores it: unwrapped docker output with Quay's datetime. */
const line = (build: number, i: number): LogEntry => ({
  message: `#${i} [build ${build}] RUN apk add --no-cache curl ca-certificates && echo step output line ${i}`,
  ...(i % 50 === 0 ? { type: 'command' as const } : {}),
  data: { datetime: '2026-01-01 10:00:00.000000' },
});

async function redisCpuMs(): Promise<number> {
  const info = await cleaner.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return (field('used_cpu_user') + field('used_cpu_sys')) * 1000;
}

async function runOnce(append: Append, ids: string[], shape: Shape): Promise<Run> {
  const latencies: number[] = [];
  const timed = async (id: string, entry: LogEntry) => {
    const t0 = performance.now();
    await append(id, entry);
    latencies.push(performance.now() - t0);
  };
  const redis0 = await redisCpuMs();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    ids.map(async (id, b) => {
      for (let i = 0; i < perBuild; ) {
        if (shape === 'stream') {
          await timed(id, line(b, i++));
        } else {
          const burst: Promise<void>[] = [];
          for (let k = 0; k < BURST && i < perBuild; k++) burst.push(timed(id, line(b, i++)));
          await Promise.all(burst);
        }
      }
    }),
  );
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  return { ms, latencies, nodeCpu: (cpu.user + cpu.system) / 1000, redisCpu: (await redisCpuMs()) - redis0 };
}

const raw = new Redis({ host: config.REDIS_HOST, port, protocol: 2 });
const cleaner = new Redis({ host: config.REDIS_HOST, port, protocol: 2 });
const store = new RedisBuildStore(config, { prefix: `bench/${randomBytes(4).toString('hex')}/` });

const contenders: Record<string, Append> = {
  baseline: (id, entry) => raw.rpush(`builds/${id}/logs`, JSON.stringify(entry)),
  'quay-style': (id, entry) =>
    raw
      .pipeline()
      .expire(`builds/${id}/logs`, 7 * 86_400)
      .rpush(`builds/${id}/logs`, JSON.stringify(entry))
      .exec(),
  buildman: (id, entry) => store.appendLogs(id, [entry]),
};

async function measure(name: string, shape: Shape): Promise<Run> {
  const tag = randomBytes(4).toString('hex');
  const ids = Array.from({ length: builds }, (_, b) => `bench-${tag}-${b}`);
  const run = await runOnce(contenders[name], ids, shape);
  const total = await cleaner.pipeline(ids.map((id) => ['llen', `builds/${id}/logs`])).exec();
  const written = (total ?? []).reduce((sum, [, n]) => sum + Number(n), 0);
  if (written !== perBuild * builds) throw new Error(`${name}: ${written} lines in Redis, expected ${perBuild * builds}`);
  await cleaner.del(...ids.map((id) => `builds/${id}/logs`));
  return run;
}

console.log(`log-append: ${perBuild * builds} lines over ${builds} builds, ${rounds} rounds, Redis 127.0.0.1:${port}, node ${process.version}`);
for (const shape of ['stream', 'burst'] as const) {
  // One warm-up round each: connections, scripts, JIT.
  for (const name of Object.keys(contenders)) await measure(name, shape);
  const results: Record<string, Run[]> = Object.fromEntries(Object.keys(contenders).map((n) => [n, []]));
  for (let r = 0; r < rounds; r++) for (const name of Object.keys(contenders)) results[name].push(await measure(name, shape));

  const concurrency = shape === 'stream' ? builds : builds * BURST;
  console.log(`\n${shape} (concurrency ${concurrency}):`);
  const base = median(results.baseline.map((r) => r.ms));
  for (const [name, runs] of Object.entries(results)) {
    const ms = median(runs.map((r) => r.ms));
    const all = runs.flatMap((r) => r.latencies);
    console.log(
      `  ${name.padEnd(10)} median ${ms.toFixed(1).padStart(7)} ms  ${Math.round(((perBuild * builds) / ms) * 1000)
        .toLocaleString('en-US')
        .padStart(9)} lines/s  ×${(base / ms).toFixed(2)} vs baseline  append p50 ${median(all).toFixed(2)} ms, p99 ${quantile(all, 0.99).toFixed(2)} ms` +
        `  cpu node ${median(runs.map((r) => r.nodeCpu)).toFixed(0)} ms, redis ${median(runs.map((r) => r.redisCpu)).toFixed(0)} ms`,
    );
  }
}

await store.close();
await raw.quit();
await cleaner.quit();
