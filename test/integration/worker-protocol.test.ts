import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { generateKeyPairSync } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Phase, type BuildPack, type BuildManagerClient } from '../../proto/gen/buildman.js';
import { JwtBuildTokens } from '../../src/tokens/jwt-build-tokens.js';
import { loadServiceKeys } from '../../src/tokens/service-keys.js';
import { scriptedWorker, startFixture, unary, urlBuild, type Fixture } from '../helpers/manager-fixture.js';


/** The registration token the manager handed to the (hand-off) worker process of a build. */
async function workerEnv(fx: Fixture, envDir: string, buildId: string): Promise<Record<string, string>> {
  const file = join(envDir, `${buildId}.json`);
  await fx.waitFor(buildId, () => existsSync(file), 10_000);
  return JSON.parse(readFileSync(file, 'utf8'));
}

function bidi<Req, Res>(stream: grpc.ClientDuplexStream<Req, Res>, reqs: Req[]): Promise<{ replies: Res[]; error?: grpc.ServiceError }> {
  return new Promise((resolve) => {
    const replies: Res[] = [];
    stream.on('data', (r: Res) => {
      replies.push(r);
      if (replies.length === reqs.length) stream.end();
    });
    stream.on('error', (error: grpc.ServiceError) => resolve({ replies, error }));
    stream.on('end', () => resolve({ replies }));
    for (const r of reqs) stream.write(r);
  });
}

describe('worker protocol over real gRPC', () => {
  let fx: Fixture;
  let client: BuildManagerClient;
  const envDir = join(process.env.TMPDIR ?? '/tmp', `bm-env-${process.pid}`);

  beforeAll(async () => {
    const { mkdirSync } = await import('node:fs');
    mkdirSync(envDir, { recursive: true });
    const worker = scriptedWorker(envDir, 'hand-off', { ENV_DIR: envDir });
    fx = await startFixture(`ALLOWED_WORKER_COUNT: 5
EXECUTORS:
- EXECUTOR: popen
  NAME: local
  BUILDER_BINARY_LOCATION: ${worker}
  INSECURE: true
  SETUP_TIME: 60`);
    client = fx.client();
  });
  afterAll(async () => {
    await fx?.close();
  });

  async function registered(repo: string): Promise<{ id: string; env: Record<string, string>; pack: BuildPack }> {
    const build = await fx.manager.service.submit(urlBuild(repo, { tags: ['v1', 'latest'] }));
    const env = await workerEnv(fx, envDir, build.id);
    const pack = await unary<{ registerJwt: string }, BuildPack>(client, 'registerBuildJob', { registerJwt: env.TOKEN });
    return { id: build.id, env, pack };
  }

  it('hands the worker Quay’s environment and answers Ping', async () => {
    const build = await fx.manager.service.submit(urlBuild('env/check'));
    const env = await workerEnv(fx, envDir, build.id);
    expect(env.BUILD_UUID).toBe(build.id);
    expect(env.SERVER).toBe(fx.manager.grpcAddress);
    expect(env.INSECURE).toBe('true');
    expect(env.TOKEN.split('.')).toHaveLength(3);
    expect('REGISTRY_HOSTNAME' in env && 'CONTAINER_RUNTIME' in env).toBe(true);
    const pong = await unary<object, { reply: string }>(client, 'ping', {});
    expect(pong.reply).toBe('pong');
    await fx.manager.service.cancel(build.id);
  });

  it('registers, takes phases in any order, logs with Quay’s unwrapping, and completes', async () => {
    const { id, pack } = await registered('proto/happy');
    expect(pack.repository).toBe('proto/happy');
    expect(pack.tagNames).toEqual(['v1', 'latest']);
    expect(pack.packageUrl).toBe('file:///nonexistent.tar');
    expect((await fx.manager.service.get(id)).phase).toBe('waiting');

    const setPhase = (phase: Phase, seq: number) =>
      unary<object, { success: boolean; sequenceNumber: number }>(client, 'setPhase', {
        jobJwt: pack.jobJwt,
        sequenceNumber: seq,
        phase,
        pullMetadata: { registryUrl: 'r.example', baseImage: 'alpine', baseImageTag: '3', pullUsername: '' },
      });
    expect(await setPhase(Phase.PULLING, 7)).toEqual({ success: true, sequenceNumber: 7 });
    expect(await setPhase(Phase.PULLING, 8)).toEqual({ success: true, sequenceNumber: 8 });

    const logs = await bidi(client.logMessage(), [
      { jobJwt: pack.jobJwt, sequenceNumber: 1, logMessage: JSON.stringify({ stream: 'Step 1/2 : FROM scratch\n' }), phase: '' },
      { jobJwt: pack.jobJwt, sequenceNumber: 2, logMessage: JSON.stringify({ status: 'pulling' }), phase: '' },
      { jobJwt: pack.jobJwt, sequenceNumber: 2, logMessage: JSON.stringify({ stream: 'repeat' }), phase: '' },
      { jobJwt: pack.jobJwt, sequenceNumber: 1, logMessage: JSON.stringify({ stream: 'backwards' }), phase: '' },
      { jobJwt: pack.jobJwt, sequenceNumber: 3, logMessage: 'not json at all', phase: '' },
      { jobJwt: pack.jobJwt, sequenceNumber: 4, logMessage: JSON.stringify({ error: 'boom' }), phase: '' },
    ]);
    expect(logs.error).toBeUndefined();
    expect(logs.replies.map((r) => [r.success, r.sequenceNumber])).toEqual([
      [true, 1],
      [true, 2],
      [false, 0],
      [false, 0],
      [false, 3],
      [true, 4],
    ]);
    expect(await setPhase(Phase.BUILDING, 9)).toEqual({ success: true, sequenceNumber: 9 });
    expect(await setPhase(Phase.COMPLETE, 10)).toEqual({ success: true, sequenceNumber: 10 });
    const done = await fx.waitFinal(id);
    expect(done.phase).toBe('complete');
    // A final build refuses further phases.
    expect((await setPhase(Phase.BUILDING, 11)).success).toBe(false);

    const { logs: entries } = await fx.manager.service.logs(id, 0);
    const shape = entries.map((e) => [e.type ?? '', e.message]);
    expect(shape).toEqual([
      ['phase', 'build-scheduled'],
      ['phase', 'waiting'],
      ['phase', 'pulling'],
      ['command', 'Step 1/2 : FROM scratch\n'],
      ['', 'pulling'],
      ['error', 'boom'],
      ['phase', 'building'],
      ['phase', 'complete'],
    ]);
    const pulling = entries.find((e) => e.type === 'phase' && e.message === 'pulling')!;
    expect(pulling.data).toMatchObject({ registry_url: 'r.example', base_image: 'alpine', base_image_tag: '3' });
    expect(pulling.data).not.toHaveProperty('pull_username');
    expect(String(pulling.data?.datetime)).toMatch(/^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{6}$/);

    // Quay's metrics count what happened, under Quay's names and labels.
    const { body } = await fx.manager.service.metrics();
    const value = (line: RegExp) => Number(body.split('\n').find((l) => line.test(l))?.split(' ').pop());
    expect(value(/^quay_build_jobs_total\{success="true"\}/)).toBeGreaterThanOrEqual(1);
    expect(value(/^quay_build_ack_duration_seconds_count\{executor="local"\}/)).toBeGreaterThanOrEqual(1);
    expect(value(/^quay_build_start_duration_seconds_count\{executor="popen"\}/)).toBeGreaterThanOrEqual(1);
    expect(value(/^quay_build_duration_seconds_count\{executor="local",job_status="complete"\}/)).toBeGreaterThanOrEqual(1);
    expect(value(/^buildman_build_enqueue_to_registered_seconds_count/)).toBeGreaterThanOrEqual(1);
  });

  it('DetermineCachedTag offers a tag an earlier build of the repository produced', async () => {
    const first = await registered('cache/repo');
    const fresh = await unary<object, { CachedTag: string }>(client, 'determineCachedTag', { jobJwt: first.pack.jobJwt, baseImageName: 'x', baseImageTag: 'y', baseImageId: '' });
    expect(fresh.CachedTag).toBe('');
    await unary(client, 'setPhase', { jobJwt: first.pack.jobJwt, sequenceNumber: 1, phase: Phase.COMPLETE });
    await fx.waitFinal(first.id);
    const second = await registered('cache/repo');
    const cached = await unary<object, { CachedTag: string }>(client, 'determineCachedTag', { jobJwt: second.pack.jobJwt, baseImageName: 'x', baseImageTag: 'y', baseImageId: '' });
    expect(cached.CachedTag).toBe('v1');
    const other = await registered('cache/other');
    const none = await unary<object, { CachedTag: string }>(client, 'determineCachedTag', { jobJwt: other.pack.jobJwt, baseImageName: 'x', baseImageTag: 'y', baseImageId: '' });
    expect(none.CachedTag).toBe('');
    await fx.manager.service.cancel(second.id);
    await fx.manager.service.cancel(other.id);
  });

  it('refuses forged, expired, wrong-type and other-build tokens with UNAUTHENTICATED and leaves the job alone', async () => {
    const a = await registered('auth/a');
    const b = await registered('auth/b');
    const before = await fx.manager.service.get(a.id);

    // Signed by a key the manager does not know, under the manager's own kid.
    const keys = await loadServiceKeys({ dataDir: fx.dataDir });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const forger = new JwtBuildTokens({ privateKey, kid: keys.kid, audience: 'localhost' });
    const forged = await forger.mint('build_job_token', a.id, `building/${a.id}`, 3600);
    // The manager's own key, but already expired beyond the 30 s leeway.
    const past = new JwtBuildTokens({ ...keys, audience: 'localhost', now: () => Date.now() - 3_600_000 });
    const expired = await past.mint('build_job_token', a.id, `building/${a.id}`, 60);
    // The manager's key and audience, but minted for another installation's job key.
    const honest = new JwtBuildTokens({ ...keys, audience: 'localhost' });
    const otherPrefix = await honest.mint('build_job_token', a.id, `other/building/${a.id}`, 3600);

    const attempts: Array<[string, string, RegExp]> = [
      ['forged', forged, /^Invalid build token: Signature verification failed/],
      ['expired', expired, /^Invalid build token: Signature has expired/],
      ['wrong type', a.env.TOKEN, /^Invalid build token: Build token type in JWT does not match expected type: build_job_token$/],
      ['garbage', 'not.a.jwt', /^Invalid build token: /],
      ['other prefix', otherPrefix, /^Invalid build token: token was issued for another job/],
    ];
    for (const [what, token, message] of attempts) {
      const err = (await unary(client, 'setPhase', { jobJwt: token, sequenceNumber: 1, phase: Phase.ERROR }).catch((e) => e)) as grpc.ServiceError;
      expect(err?.code, what).toBe(grpc.status.UNAUTHENTICATED);
      expect(err.details, what).toMatch(message);
      const hb = await bidi(client.heartbeat(), [{ jobJwt: token }]);
      expect(hb.error?.code, what).toBe(grpc.status.UNAUTHENTICATED);
    }
    // A job token used where a registration token belongs.
    const reg = (await unary(client, 'registerBuildJob', { registerJwt: a.pack.jobJwt }).catch((e) => e)) as grpc.ServiceError;
    expect(reg.details).toBe('Invalid build token: Build token type in JWT does not match expected type: build_job_registration');

    // B's token acts on B only: sending ERROR with it leaves A running.
    await unary(client, 'setPhase', { jobJwt: b.pack.jobJwt, sequenceNumber: 1, phase: Phase.ERROR });
    expect((await fx.waitFinal(b.id)).phase).toBe('error');
    const after = await fx.manager.service.get(a.id);
    expect(after.state).toBe(before.state);
    expect(after.final).toBe(false);

    const hb = await bidi(client.heartbeat(), [{ jobJwt: a.pack.jobJwt }, { jobJwt: b.pack.jobJwt }]);
    expect(hb.replies.map((r) => r.reply)).toEqual([true, false]);
    await fx.manager.service.cancel(a.id);
  });
});

describe('gRPC health service', () => {
  it('answers SERVING for the server and for buildman_pb.BuildManager', async () => {
    const { startFixture: start } = await import('../helpers/manager-fixture.js');
    const fx = await start(`EXECUTORS:\n- EXECUTOR: popen\n  BUILDER_BINARY_LOCATION: /bin/true\n  INSECURE: true`);
    try {
      const { service: healthService } = await import('grpc-health-check');
      const Client = grpc.makeGenericClientConstructor(healthService as never, 'Health');
      const client = new Client(fx.manager.grpcAddress, grpc.credentials.createInsecure()) as unknown as {
        check(req: { service: string }, cb: (e: Error | null, r: { status: string }) => void): void;
        close(): void;
      };
      for (const service of ['', 'buildman_pb.BuildManager']) {
        const res = await new Promise<{ status: string }>((resolve, reject) => client.check({ service }, (e, r) => (e ? reject(e) : resolve(r))));
        expect(res.status).toBe('SERVING');
      }
      const missing = await new Promise<grpc.ServiceError>((resolve) => client.check({ service: 'nope' }, (e) => resolve(e as grpc.ServiceError)));
      expect(missing.code).toBe(grpc.status.NOT_FOUND);
      client.close();
    } finally {
      await fx.close();
    }
  });
});
