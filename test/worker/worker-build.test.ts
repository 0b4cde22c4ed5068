import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import * as tar from 'tar';
import { PACKAGE_ROOT } from '../../src/util/package-root.js';
import { runWorker } from '../../src/worker/main.js';
import { BUSYBOX, hasBuildah } from '../helpers/buildah.js';
import { bcryptLine, hasRegistry, startRegistry, type LocalRegistry } from '../helpers/registry.js';
import { JOB_TOKEN, REGISTRATION_TOKEN, makePackage, startRecordingManager, workerEnv, type RecordingManager } from './recording-manager.js';

// Real builds: buildah with chroot isolation and a private vfs store, `FROM scratch` plus busybox, no network.

const canBuild = hasBuildah() && BUSYBOX !== undefined;

let dir: string;
let manager: RecordingManager | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'buildman-worker-build-'));
});
afterEach(async () => {
  await manager?.stop();
  manager = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const env = (extra: NodeJS.ProcessEnv = {}) => workerEnv(manager!, dir, extra);

const busybox = () => readFileSync(BUSYBOX!);

describe.skipIf(!canBuild)('worker builds with buildah', () => {
  it('builds, writes OCI archives when the pack has no registry, and reports every phase in order', async () => {
    const packageUrl = await makePackage(dir, {
      Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\n',
      busybox: busybox(),
    });
    // Two rejected heartbeats are retried and do not stop the build.
    manager = await startRecordingManager({ pack: { packageUrl, tagNames: ['latest', 'v1'] }, heartbeatReply: (n) => n >= 2 });
    const lines: string[] = [];
    const result = await runWorker(env(), { log: (l) => lines.push(l) });
    expect(result).toEqual({ exitCode: 0, outcome: 'complete' });

    const { rec } = manager;
    expect(rec.calls.filter((c) => c !== 'Heartbeat:end')).toEqual([
      'Ping',
      'LogMessage',
      'RegisterBuildJob',
      'Heartbeat',
      'SetPhase:UNPACKING',
      'SetPhase:PULLING',
      'DetermineCachedTag',
      'SetPhase:BUILDING',
      'SetPhase:PUSHING',
      'SetPhase:COMPLETE',
    ]);
    // Heartbeats stop before COMPLETE is sent.
    expect(rec.calls.indexOf('Heartbeat:end')).toBeLessThan(rec.calls.indexOf('SetPhase:COMPLETE'));
    expect(rec.phases.map((p) => p.sequenceNumber)).toEqual([1, 2, 3, 4, 5]);
    expect(rec.phases[1].pullMetadata).toEqual({ registryUrl: '', baseImage: 'scratch', baseImageTag: 'latest', pullUsername: '' });
    expect(rec.cachedTagRequests[0]).toMatchObject({ baseImageName: 'scratch', baseImageTag: 'latest' });
    expect(rec.heartbeats.length).toBeGreaterThanOrEqual(3);
    expect(new Set(rec.jobTokens)).toEqual(new Set([JOB_TOKEN]));

    // Log lines: jsonmessage JSON, numbered from 1, no phase field, Docker's step spelling.
    expect(rec.logs.map((l) => l.sequenceNumber)).toEqual(rec.logs.map((_, i) => i + 1));
    expect(rec.logs.every((l) => l.phase === '')).toBe(true);
    const messages = manager.messages();
    for (const m of messages) expect(Object.keys(m).length === 1 && ['stream', 'status', 'error'].includes(Object.keys(m)[0])).toBe(true);
    expect(messages).toContainEqual({ stream: 'Step 1/2 : FROM scratch\n' });
    expect(messages).toContainEqual({ stream: 'Step 2/2 : COPY busybox /bin/busybox\n' });
    expect(messages.some((m) => 'error' in m)).toBe(false);

    for (const tag of ['latest', 'v1']) {
      const archive = join(dir, 'images', 'test_hello', `${tag}.oci.tar`);
      expect(messages).toContainEqual({ stream: `wrote image ${archive}\n` });
      expect(existsSync(archive)).toBe(true);
      const index = await readIndex(archive);
      expect(index.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe(`test/hello:${tag}`);
    }

    const output = lines.join('\n');
    expect(output).not.toContain(REGISTRATION_TOKEN);
    expect(output).not.toContain(JOB_TOKEN);
  });

  it('reports a failing Dockerfile as an error log line and ERROR, after streaming its steps', async () => {
    const packageUrl = await makePackage(dir, { Dockerfile: 'FROM scratch\nCOPY missing-file /x\n' }, { gzip: false });
    manager = await startRecordingManager({ pack: { packageUrl } });
    const result = await runWorker(env(), { log: () => {} });
    expect(result.exitCode).toBe(1);
    expect(result.outcome).toBe('error');
    expect(manager.phaseNames()).toEqual(['UNPACKING', 'PULLING', 'BUILDING', 'ERROR']);
    expect(manager.rec.phases.map((p) => p.sequenceNumber)).toEqual([1, 2, 3, 4]);
    const messages = manager.messages();
    expect(messages).toContainEqual({ stream: 'Step 2/2 : COPY missing-file /x\n' });
    const errors = messages.filter((m) => 'error' in m);
    expect(errors).toHaveLength(1);
    expect(errors[0].error).toContain('buildah build failed');
    expect(errors[0].error).toContain('missing-file');
    expect(messages.at(-1)).toBe(errors[0]);
    expect(manager.rec.calls.indexOf('Heartbeat:end')).toBeLessThan(manager.rec.calls.indexOf('SetPhase:ERROR'));
  });

  it('builds examples/hello, packed as a plain tar', async () => {
    const file = join(dir, 'hello.tar');
    await tar.c({ file, cwd: join(PACKAGE_ROOT, 'examples', 'hello'), portable: true }, ['Dockerfile', 'hello.txt']);
    manager = await startRecordingManager({ pack: { packageUrl: pathToFileURL(file).href, repository: 'examples/hello' } });
    const result = await runWorker(env(), { log: () => {} });
    expect(result.exitCode).toBe(0);
    expect(manager.messages()).toContainEqual({ stream: 'Step 3/3 : CMD ["/hello.txt"]\n' });
    expect(existsSync(join(dir, 'images', 'examples_hello', 'latest.oci.tar'))).toBe(true);
  });

  it('refuses a Dockerfile path that escapes the package', async () => {
    const packageUrl = await makePackage(dir, { 'app/Dockerfile': 'FROM scratch\n' });
    manager = await startRecordingManager({ pack: { packageUrl, context: '/app', dockerfilePath: '../../etc/passwd' } });
    const result = await runWorker(env(), { log: () => {} });
    expect(result.exitCode).toBe(1);
    expect(manager.phaseNames()).toEqual(['UNPACKING', 'ERROR']);
    expect(manager.messages().at(-1)?.error).toContain('outside the build package');
  });
});

describe.skipIf(!canBuild || !hasRegistry())('worker pushes to a registry on loopback', () => {
  const pushToken = 'push-token-for-the-test-0123';
  let registry: LocalRegistry;
  // With basic auth (user `$token`, password = push token) when a bcrypt hash can be made here.
  const auth = bcryptLine('$token', pushToken) ? { username: '$token', password: pushToken } : undefined;

  beforeAll(async () => {
    registry = await startRegistry({ auth });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('pushes every tag with $token:<push_token>, from a context sub-folder and a custom Dockerfile path', async () => {
    const packageUrl = await makePackage(dir, {
      'app/build/Containerfile': 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "echo", "hello"]\n',
      'app/busybox': busybox(),
    });
    manager = await startRecordingManager({
      pack: {
        packageUrl,
        context: '/app',
        dockerfilePath: 'build/Containerfile',
        registry: registry.host,
        repository: 'test/pushed',
        tagNames: ['latest', 'v1', 'v2'],
        pushToken,
        pullToken: pushToken,
      },
    });
    const lines: string[] = [];
    const result = await runWorker(env({ REGISTRY_INSECURE: 'true' }), { log: (l) => lines.push(l) });
    expect(result.message).toBeUndefined();
    expect(result.exitCode).toBe(0);
    expect(await registry.tags('test/pushed')).toEqual(['latest', 'v1', 'v2']);
    // The registry really refuses anonymous clients, so the push used the token.
    if (auth) expect((await fetch(`http://${registry.host}/v2/`)).status).toBe(401);
    expect(manager.rec.phases[1].pullMetadata).toEqual({
      registryUrl: registry.host,
      baseImage: 'scratch',
      baseImageTag: 'latest',
      pullUsername: '',
    });
    const messages = manager.messages();
    expect(messages).toContainEqual({ stream: 'Step 3/3 : CMD ["/bin/busybox", "echo", "hello"]\n' });
    expect(messages.some((m) => 'status' in m)).toBe(true);
    expect(JSON.stringify(messages)).not.toContain(pushToken);
    expect(lines.join('\n')).not.toContain(pushToken);
  });
});

async function readIndex(archive: string): Promise<{ manifests: Array<{ annotations: Record<string, string> }> }> {
  let text = '';
  await tar.t({
    file: archive,
    onReadEntry: (entry) => {
      if (entry.path === 'index.json') entry.on('data', (d: Buffer) => (text += d.toString()));
      else entry.resume();
    },
  });
  return JSON.parse(text);
}
