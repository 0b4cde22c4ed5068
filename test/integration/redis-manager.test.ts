import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { Phase, type BuildPack } from '../../proto/gen/buildman.js';
import { cleanupPrefix, RedisServerChild, testClient, uniquePrefix } from '../helpers/redis.js';
import { scriptedWorker, startFixture, unary, urlBuild, type Fixture } from '../helpers/manager-fixture.js';

const PULL_PASSWORD = 'pull-password-do-not-leak';
const QUAY_PASSWORD = 'quay-password-do-not-leak';

describe('a manager on Redis', () => {
  let fx: Fixture | undefined;
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function managerYaml(prefix: string, port: number, worker: string): string {
    return `ALLOWED_WORKER_COUNT: 3
ORCHESTRATOR_PREFIX: ${prefix}
ORCHESTRATOR:
  REDIS_HOST: 127.0.0.1
  REDIS_PORT: ${port}
EXECUTORS:
- EXECUTOR: popen
  BUILDER_BINARY_LOCATION: ${worker}
  INSECURE: true
  SETUP_TIME: 30
  QUAY_PASSWORD: ${QUAY_PASSWORD}`;
  }

  async function handOff(dir: string, buildId: string): Promise<Record<string, string>> {
    const file = join(dir, `${buildId}.json`);
    await fx!.waitFor(buildId, () => existsSync(file), 10_000);
    return JSON.parse(readFileSync(file, 'utf8'));
  }

  it('persists each change: a replayable history and a snapshot, announced on build_events, with no secret in either', async () => {
    const prefix = uniquePrefix();
    cleanups.push(() => cleanupPrefix(prefix));
    const dir = join(tmpdir(), `bm-redis-${process.pid}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    fx = await startFixture(managerYaml(prefix, 6379, scriptedWorker(dir, 'hand-off', { ENV_DIR: dir })));
    const sub = testClient();
    cleanups.push(async () => void sub.disconnect());
    const announced: Array<{ build_id: string; state: string }> = [];
    sub.on('message', (_c, m) => announced.push(JSON.parse(m)));
    await sub.subscribe(`${prefix}build_events`);

    const build = await fx.manager.service.submit(
      urlBuild('secrets/check', { pullCredentials: { username: 'robot', password: PULL_PASSWORD } }),
    );
    const env = await handOff(dir, build.id);
    const client = fx.client();
    const pack = await unary<{ registerJwt: string }, BuildPack>(client, 'registerBuildJob', { registerJwt: env.TOKEN });
    expect(pack.baseImage?.password).toBe(PULL_PASSWORD); // the worker does get it…
    for (const phase of [Phase.UNPACKING, Phase.BUILDING, Phase.COMPLETE]) {
      await unary(client, 'setPhase', { jobJwt: pack.jobJwt, sequenceNumber: 1, phase });
    }
    expect((await fx.waitFinal(build.id)).phase).toBe('complete');

    const history = await fx.manager.service.history(build.id);
    const states = history.map((h) => h.state);
    expect(states[0]).toBe('queued');
    expect(states).toContain('waitingForRegistration');
    expect(states).toContain('running.building');
    expect(states[states.length - 1]).toBe('complete');
    expect(history.map((h) => h.event.type)).toEqual(expect.arrayContaining(['job.claimed', 'worker.registered', 'worker.phase']));
    await fx.waitFor(build.id, () => announced.some((a) => a.build_id === build.id && a.state === 'complete'), 5000);

    // …but nothing persisted about the build holds a secret: not the tokens, not a password.
    const redis = testClient();
    cleanups.push(async () => void redis.disconnect());
    const keys = await redis.keys(`${prefix}actors/${build.id}/*`);
    expect(keys.sort()).toEqual([`${prefix}actors/${build.id}/history`, `${prefix}actors/${build.id}/snapshot`]);
    const dump = [
      await redis.get(`${prefix}actors/${build.id}/snapshot`),
      JSON.stringify(await redis.xrange(`${prefix}actors/${build.id}/history`, '-', '+')),
    ].join('\n');
    expect(dump.length).toBeGreaterThan(200);
    for (const secret of [env.TOKEN, pack.jobJwt, PULL_PASSWORD, QUAY_PASSWORD]) expect(dump).not.toContain(secret);
    // The finished build's persisted state is kept for the retention period, not forever.
    expect(await redis.ttl(`${prefix}actors/${build.id}/snapshot`)).toBeGreaterThan(0);
  });

  it("a cancel written the way Quay's API writes it (unprefixed cancel/<uuid>, published on the event channel) cancels the build", async () => {
    const prefix = uniquePrefix();
    cleanups.push(() => cleanupPrefix(prefix));
    const dir = join(tmpdir(), `bm-quay-cancel-${process.pid}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    fx = await startFixture(managerYaml(prefix, 6379, scriptedWorker(dir, 'hand-off', { ENV_DIR: dir })));
    const build = await fx.manager.service.submit(urlBuild('quay/cancel'));
    await handOff(dir, build.id);
    const redis = testClient();
    cleanups.push(async () => {
      await redis.del(`cancel/${build.id}`, `cancel/${build.id}/expiring`);
      redis.disconnect();
    });
    // Quay's OrchestratorCanceller: SET cancel/<uuid> <uuid> with a 60 s TTL sibling, then PUBLISH CREATE.
    await redis.set(`cancel/${build.id}`, build.id, 'EX', 60 + 86400);
    await redis.set(`cancel/${build.id}/expiring`, '', 'EX', 60);
    await redis.publish(`${prefix}orchestrator_events`, JSON.stringify({ event: 1, key: `cancel/${build.id}`, value: build.id }));
    const done = await fx.waitFinal(build.id, 10_000);
    expect(done.phase).toBe('cancelled');
    expect(done.reason).toMatch(/Quay's cancel key/);
  });

  it('while Redis is down, workers are told UNAVAILABLE (not a lie), and the build carries on once it is back', async () => {
    const server = await RedisServerChild.start(['--appendonly', 'yes', '--appendfsync', 'always', '--dir', tmpdir(), '--appendfilename', `bm-${process.pid}-${Date.now()}.aof`]);
    cleanups.push(() => server.stop());
    const prefix = uniquePrefix();
    const dir = join(tmpdir(), `bm-redis-down-${process.pid}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    fx = await startFixture(managerYaml(prefix, server.port, scriptedWorker(dir, 'hand-off', { ENV_DIR: dir })));
    const build = await fx.manager.service.submit(urlBuild('outage/check'));
    const env = await handOff(dir, build.id);
    const client = fx.client();
    const pack = await unary<{ registerJwt: string }, BuildPack>(client, 'registerBuildJob', { registerJwt: env.TOKEN });

    await server.stop();
    const err = (await unary(client, 'setPhase', { jobJwt: pack.jobJwt, sequenceNumber: 1, phase: Phase.BUILDING }).catch((e) => e)) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.UNAVAILABLE);
    expect(err.details).toMatch(/Redis is unavailable/);

    await server.start();
    // The manager reconnects on its own; the same call then succeeds and the build finishes.
    let ok = false;
    for (let i = 0; i < 50 && !ok; i++) {
      ok = await unary<object, { success: boolean }>(client, 'setPhase', { jobJwt: pack.jobJwt, sequenceNumber: 2, phase: Phase.BUILDING })
        .then((r) => r.success)
        .catch(() => false);
      if (!ok) await new Promise((r) => setTimeout(r, 200));
    }
    expect(ok).toBe(true);
    await unary(client, 'setPhase', { jobJwt: pack.jobJwt, sequenceNumber: 3, phase: Phase.COMPLETE });
    expect((await fx.waitFinal(build.id)).phase).toBe('complete');
  });
});
