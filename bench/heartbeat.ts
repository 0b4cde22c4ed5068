/**
 * The heartbeat hot path: many workers holding Heartbeat streams open on one Redis-backed
 * manager. A quay-builder beats about every 2 s, so 10,000 running builds need ~5,000 beats/s.
 * Each stream here beats as fast as its replies come back (closed loop) for a fixed time.
 *
 * Baselines in the same run, same stream count: a bare grpc-js Heartbeat server that answers at
 * once (the gRPC floor), and raw Redis doing what a heartbeat must at least do (GET + SET EX).
 *
 *   npm run build && node dist/bench/heartbeat.js [streams] [seconds]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Redis } from 'ioredis';
import { BuildManagerClient, BuildManagerService, type BuildPack, type HeartbeatRequest, type HeartbeatResponse } from '../proto/gen/buildman.js';
import { parseConfig } from '../src/config/load-config.js';
import { startManager } from '../src/runtime/start-manager.js';
import { JwtBuildTokens } from '../src/tokens/jwt-build-tokens.js';
import { loadServiceKeys } from '../src/tokens/service-keys.js';
import { silentLogger } from '../src/util/logger.js';
import { quantile } from './stats.js';

const streams = Number(process.argv[2] ?? 200);
const seconds = Number(process.argv[3] ?? 5);

/** Drives `streams` closed-loop heartbeat streams for `seconds`; returns beats/s and latencies. */
async function drive(address: string, jwts: string[]): Promise<{ rate: number; lat: number[] }> {
  const client = new BuildManagerClient(address, grpc.credentials.createInsecure());
  const lat: number[] = [];
  let beats = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    jwts.map(
      (jobJwt) =>
        new Promise<void>((resolve) => {
          const call = client.heartbeat();
          let sent = 0;
          const send = () => {
            sent = performance.now();
            call.write({ jobJwt } satisfies HeartbeatRequest);
          };
          call.on('data', (r: HeartbeatResponse) => {
            if (!r.reply) throw new Error('heartbeat refused');
            lat.push(performance.now() - sent);
            beats++;
            if (Date.now() < end) send();
            else call.end();
          });
          call.on('end', () => resolve());
          call.on('error', (e) => {
            console.error(e.message);
            resolve();
          });
          send();
        }),
    ),
  );
  client.close();
  return { rate: beats / seconds, lat };
}

async function bareGrpc(): Promise<{ rate: number; lat: number[] }> {
  const server = new grpc.Server();
  const unimpl = (_c: unknown, cb: grpc.sendUnaryData<never>) => cb({ code: grpc.status.UNIMPLEMENTED });
  server.addService(BuildManagerService, {
    ping: unimpl,
    registerBuildJob: unimpl,
    setPhase: unimpl,
    determineCachedTag: unimpl,
    logMessage: (call: grpc.ServerDuplexStream<unknown, unknown>) => call.end(),
    heartbeat: (call: grpc.ServerDuplexStream<HeartbeatRequest, HeartbeatResponse>) => {
      call.on('data', () => call.write({ reply: true }));
      call.on('end', () => call.end());
    },
  });
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  const result = await drive(`127.0.0.1:${port}`, Array.from({ length: streams }, () => 'x'));
  server.forceShutdown();
  return result;
}

async function rawRedis(): Promise<{ rate: number; lat: number[] }> {
  const redis = new Redis();
  const prefix = `bench/hb-${randomBytes(4).toString('hex')}/`;
  const lat: number[] = [];
  let beats = 0;
  const end = Date.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: streams }, async (_, i) => {
      const key = `${prefix}${i}`;
      await redis.set(key, '{}');
      while (Date.now() < end) {
        const t = performance.now();
        const v = await redis.get(key);
        await redis.set(key, v ?? '{}', 'EX', 60);
        lat.push(performance.now() - t);
        beats++;
      }
    }),
  );
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
  return { rate: beats / seconds, lat };
}

async function buildman(): Promise<{ rate: number; lat: number[]; redisCallsPerBeat: number }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bm-hb-'));
  const prefix = `bench/${randomBytes(4).toString('hex')}/`;
  const config = parseConfig(
    `FEATURE_BUILD_SUPPORT: true
BUILD_MANAGER:
- ephemeral
- ALLOWED_WORKER_COUNT: ${streams}
  ORCHESTRATOR_PREFIX: ${prefix}
  ORCHESTRATOR:
    REDIS_HOST: 127.0.0.1
  EXECUTORS:
  - EXECUTOR: popen
    BUILDER_BINARY_LOCATION: /bin/true
    INSECURE: true
    SETUP_TIME: 600
`,
    { source: 'bench', overrides: { grpcPort: 0, httpPort: 0, grpcHost: '127.0.0.1', dataDir }, env: {} },
  );
  const manager = await startManager(config, { logger: silentLogger() });
  // The executor starts /bin/true, so this bench plays every worker: it mints the registration
  // tokens the real workers would have been handed, then registers each build.
  const keys = await loadServiceKeys({ dataDir });
  const tokens = new JwtBuildTokens({ ...keys, audience: config.BUILDMAN_HOSTNAME });
  const ids: string[] = [];
  for (let i = 0; i < streams; i++) {
    const b = await manager.service.submit({ repository: `bench/r${i}`, tags: ['latest'], dockerfilePath: 'Dockerfile', context: '/', source: { kind: 'url', url: 'file:///x.tar' } });
    ids.push(b.id);
  }
  for (const id of ids) {
    while ((await manager.service.get(id)).state !== 'waitingForRegistration') await new Promise((r) => setTimeout(r, 5));
  }
  const client = new BuildManagerClient(manager.grpcAddress, grpc.credentials.createInsecure());
  const jwts: string[] = [];
  for (const id of ids) {
    const registerJwt = await tokens.mint('build_job_registration', id, `${prefix}building/${id}`, 60);
    const pack = await new Promise<BuildPack>((res, rej) => client.registerBuildJob({ registerJwt }, (e, p) => (e ? rej(e) : res(p))));
    jwts.push(pack.jobJwt);
  }
  client.close();
  const redis = new Redis();
  const calls = async () => {
    const info = await redis.info('stats');
    return Number(/total_commands_processed:(\d+)/.exec(info)?.[1] ?? 0);
  };
  const before = await calls();
  const result = await drive(manager.grpcAddress, jwts);
  const after = await calls();
  // Our own INFO calls are two commands; everything else on the server during the run counts.
  const redisCallsPerBeat = (after - before - 2) / (result.rate * seconds);
  for (const id of ids) await manager.service.cancel(id).catch(() => {});
  await manager.stop();
  const left = await redis.keys(`${prefix}*`);
  if (left.length) await redis.del(...left);
  redis.disconnect();
  rmSync(dataDir, { recursive: true, force: true });
  return { ...result, redisCallsPerBeat };
}

const grpcFloor = await bareGrpc();
const redisFloor = await rawRedis();
const ours = await buildman();
const row = (name: string, r: { rate: number; lat: number[] }) =>
  `  ${name.padEnd(40)} ${r.rate.toFixed(0).padStart(7)} beats/s   p50 ${quantile(r.lat, 0.5).toFixed(2)} ms   p99 ${quantile(r.lat, 0.99).toFixed(2)} ms`;
console.log(`heartbeat hot path: ${streams} concurrent streams, ${seconds} s, closed loop`);
console.log(row('baseline: bare grpc-js Heartbeat', grpcFloor));
console.log(row('baseline: raw Redis GET + SET EX', redisFloor));
console.log(row('buildman on Redis (verify, TTL, lease)', ours));
console.log(`  buildman / bare gRPC: ${(ours.rate / grpcFloor.rate).toFixed(2)}×   Redis commands per heartbeat: ${ours.redisCallsPerBeat.toFixed(2)} (2 round trips: a GET and one Lua write; commands inside the script count too)`);
console.log(`  10,000 builds beating every 2 s need 5,000 beats/s: ${ours.rate >= 5000 ? 'met' : 'NOT met'} on one instance`);
