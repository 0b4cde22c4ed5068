import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PopenExecutorConfig } from '../../../src/config/config-types.js';
import { InfraError } from '../../../src/errors/buildman-error.js';
import type { ExecutorContext } from '../../../src/executors/build-executor.js';
import { isLoopbackHost, LocalExecutor, stripPort } from '../../../src/executors/local/local-executor.js';
import { BUSYBOX, hasBuildah } from '../../helpers/buildah.js';
import { makePackage, REGISTRATION_TOKEN, startRecordingManager } from '../../worker/recording-manager.js';
import { WORKER_FROM_SOURCE } from '../../worker/worker-from-source.js';

let dir: string;
let executor: LocalExecutor | undefined;
let logged: Array<{ obj: Record<string, unknown>; msg?: string }>;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'buildman-local-exec-'));
  logged = [];
});
afterEach(async () => {
  await executor?.close();
  executor = undefined;
  rmSync(dir, { recursive: true, force: true });
});

function context(over: Partial<ExecutorContext> = {}): ExecutorContext {
  const sink = (obj: object, msg?: string) => void logged.push({ obj: obj as Record<string, unknown>, msg });
  return {
    managerHostname: 'buildman.example.com:8443',
    grpcAddress: '127.0.0.1:50051',
    installationId: 'bm-test',
    registryHostname: '127.0.0.1:5000',
    dataDir: join(dir, 'data'),
    log: { info: sink, warn: sink, error: sink },
    ...over,
  };
}

function config(over: Partial<PopenExecutorConfig> = {}): PopenExecutorConfig {
  return {
    EXECUTOR: 'popen',
    NAME: 'local',
    MINIMUM_RETRY_THRESHOLD: 0,
    DEBUG: false,
    BUILDER_BINARY_LOCATION: '',
    BUILDAH_ISOLATION: 'chroot',
    INSECURE: true,
    CONTAINER_RUNTIME: 'buildah',
    ...over,
  };
}

/** Writes a worker stand-in: a Node script run as BUILDER_BINARY_LOCATION. */
function script(name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, body);
  return path;
}

const envDumper = () =>
  script('env-dump.js', `import { writeFileSync } from 'node:fs';\nwriteFileSync(${JSON.stringify(dir)} + '/' + process.env.BUILD_UUID + '.env.json', JSON.stringify(process.env));\n`);

const sleeper = () =>
  script(
    'sleeper.js',
    `import { appendFileSync } from 'node:fs';
appendFileSync(${JSON.stringify(dir)} + '/starts-' + process.env.BUILD_UUID, 'started\\n');
console.log('hello from stdout');
console.error('hello from stderr');
setInterval(() => {}, 1000);
`,
  );

async function waitFor(pred: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function withProxyEnv<T>(vars: Record<string, string | undefined>, fn: () => Promise<T>): Promise<T> {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  return fn().finally(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

const readEnv = (buildId: string) => JSON.parse(readFileSync(join(dir, `${buildId}.env.json`), 'utf8')) as Record<string, string>;

describe('LocalExecutor', () => {
  it("passes exactly Quay's popen environment plus ours (insecure, loopback registry)", async () => {
    executor = new LocalExecutor(config({ BUILDER_BINARY_LOCATION: envDumper() }), context());
    await withProxyEnv({ HTTP_PROXY: 'http://proxy.example:3128', HTTPS_PROXY: undefined, NO_PROXY: 'localhost,127.0.0.1' }, async () => {
      const id = await executor!.start({ buildId: 'b-env', attempt: 2, token: 'the-registration-token' });
      expect(id).toBe('b-env-2');
      await waitFor(() => existsSync(join(dir, 'b-env.env.json')), 'the env dump');
    });
    expect(readEnv('b-env')).toEqual({
      TOKEN: 'the-registration-token',
      BUILD_UUID: 'b-env',
      SERVER: '127.0.0.1:50051',
      REGISTRY_HOSTNAME: '127.0.0.1:5000',
      CONTAINER_RUNTIME: 'buildah',
      BUILDAH_ISOLATION: 'chroot',
      INSECURE: 'true',
      DOCKER_HOST: process.env.DOCKER_HOST || 'unix:///var/run/docker.sock',
      PATH: process.env.PATH,
      HTTP_PROXY: 'http://proxy.example:3128',
      NO_PROXY: 'localhost,127.0.0.1',
      BUILDMAN_IMAGE_DIR: join(dir, 'data', 'images'),
      BUILDMAN_STORAGE_ROOT: join(dir, 'data', 'containers'),
      REGISTRY_INSECURE: 'true',
    });
  });

  it("uses the manager host on Quay's TLS port 55443 when not INSECURE, and passes DEBUG", async () => {
    executor = new LocalExecutor(
      config({ BUILDER_BINARY_LOCATION: envDumper(), INSECURE: false, DEBUG: true, CONTAINER_RUNTIME: undefined, BUILDAH_ISOLATION: '' }),
      context({ registryHostname: 'quay.example.com' }),
    );
    await withProxyEnv({ HTTP_PROXY: undefined, HTTPS_PROXY: undefined, NO_PROXY: undefined }, async () => {
      await executor!.start({ buildId: 'b-tls', attempt: 1, token: 't' });
      await waitFor(() => existsSync(join(dir, 'b-tls.env.json')), 'the env dump');
    });
    const env = readEnv('b-tls');
    expect(env.SERVER).toBe('buildman.example.com:55443');
    expect(env.INSECURE).toBe('false');
    expect(env.DEBUG).toBe('true');
    expect(env.CONTAINER_RUNTIME).toBe('docker');
    expect(env.BUILDAH_ISOLATION).toBe('chroot');
    expect(env.REGISTRY_HOSTNAME).toBe('quay.example.com');
    expect(env).not.toHaveProperty('REGISTRY_INSECURE');
  });

  it('starts one process per build attempt however often start is called, and captures its output', async () => {
    executor = new LocalExecutor(config({ BUILDER_BINARY_LOCATION: sleeper() }), context());
    const ids = await Promise.all([
      executor.start({ buildId: 'b1', attempt: 1, token: 't' }),
      executor.start({ buildId: 'b1', attempt: 1, token: 't' }),
    ]);
    expect(ids).toEqual(['b1-1', 'b1-1']);
    expect(await executor.start({ buildId: 'b1', attempt: 1, token: 't' })).toBe('b1-1');
    expect(await executor.runningCount()).toBe(1);
    await waitFor(() => logged.some((l) => l.msg === 'hello from stderr') && logged.some((l) => l.msg === 'hello from stdout'), 'output');
    expect(readFileSync(join(dir, 'starts-b1'), 'utf8')).toBe('started\n');
    expect(logged.find((l) => l.msg === 'hello from stdout')?.obj).toEqual({ buildId: 'b1', executionId: 'b1-1', stream: 'stdout' });
    expect(logged.find((l) => l.msg === 'hello from stderr')?.obj).toEqual({ buildId: 'b1', executionId: 'b1-1', stream: 'stderr' });

    // A new attempt is a new worker.
    expect(await executor.start({ buildId: 'b1', attempt: 2, token: 't' })).toBe('b1-2');
    expect(await executor.runningCount()).toBe(2);
  });

  it('stops a worker (harmlessly twice, or when unknown) and no longer counts it', async () => {
    executor = new LocalExecutor(config({ BUILDER_BINARY_LOCATION: sleeper() }), context());
    const id = await executor.start({ buildId: 'b2', attempt: 1, token: 't' });
    await waitFor(() => logged.some((l) => l.msg === 'hello from stdout'), 'the worker to run');
    const pid = logged.find((l) => l.msg === 'local worker started')?.obj.pid as number;
    expect(pid).toBeGreaterThan(0);
    await executor.stop({ buildId: 'b2', attempt: 1, executionId: id });
    expect(isAlive(pid)).toBe(false);
    expect(await executor.runningCount()).toBe(0);
    await executor.stop({ buildId: 'b2', attempt: 1, executionId: id });
    await executor.stop({ buildId: 'never-started', attempt: 1 });
    // Restartable after a stop.
    expect(await executor.start({ buildId: 'b2', attempt: 1, token: 't' })).toBe('b2-1');
    expect(await executor.runningCount()).toBe(1);
  });

  it('kills a worker that ignores SIGTERM after 3 s', async () => {
    const stubborn = script('stubborn.js', `process.on('SIGTERM', () => {});\nconsole.log('ready');\nsetInterval(() => {}, 1000);\n`);
    executor = new LocalExecutor(config({ BUILDER_BINARY_LOCATION: stubborn }), context());
    await executor.start({ buildId: 'b3', attempt: 1, token: 't' });
    await waitFor(() => logged.some((l) => l.msg === 'ready'), 'the worker to install its handler');
    const pid = logged.find((l) => l.msg === 'local worker started')?.obj.pid as number;
    const started = Date.now();
    await executor.stop({ buildId: 'b3', attempt: 1 });
    const took = Date.now() - started;
    expect(took).toBeGreaterThanOrEqual(2900);
    expect(took).toBeLessThan(6000);
    expect(isAlive(pid)).toBe(false);
  });

  it('forgets a worker that exits by itself', async () => {
    const quick = script('quick.js', `console.log('done');\n`);
    executor = new LocalExecutor(config({ BUILDER_BINARY_LOCATION: quick }), context());
    await executor.start({ buildId: 'b4', attempt: 1, token: 't' });
    await waitFor(async () => (await executor!.runningCount()) === 0, 'the worker to exit');
    expect(logged.find((l) => l.msg === 'local worker exited')?.obj).toMatchObject({ buildId: 'b4', executionId: 'b4-1', code: 0 });
  });

  it('throws a retryable InfraError when the binary cannot be spawned', async () => {
    const notExecutable = join(dir, 'not-executable');
    writeFileSync(notExecutable, '#!/bin/sh\n');
    chmodSync(notExecutable, 0o644);
    for (const binary of [join(dir, 'missing-worker'), notExecutable]) {
      executor = new LocalExecutor(config({ BUILDER_BINARY_LOCATION: binary }), context());
      const err = await executor.start({ buildId: 'b5', attempt: 1, token: 't' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InfraError);
      expect((err as InfraError).retryable).toBe(true);
      expect((err as InfraError).message).toMatch(new RegExp(`^Failed to spawn ${binary}: `));
      expect(await executor.runningCount()).toBe(0);
    }
  });

  it('close() stops every worker', async () => {
    executor = new LocalExecutor(config({ BUILDER_BINARY_LOCATION: sleeper() }), context());
    await executor.start({ buildId: 'c1', attempt: 1, token: 't' });
    await executor.start({ buildId: 'c2', attempt: 1, token: 't' });
    await waitFor(() => logged.filter((l) => l.msg === 'local worker started').length === 2, 'two workers');
    const pids = logged.filter((l) => l.msg === 'local worker started').map((l) => l.obj.pid as number);
    await executor.close();
    expect(await executor.runningCount()).toBe(0);
    expect(pids.map(isAlive)).toEqual([false, false]);
  });
});

describe('host helpers', () => {
  it('strips ports and recognises loopback registries', () => {
    expect(stripPort('buildman.example.com:8443')).toBe('buildman.example.com');
    expect(stripPort('buildman.example.com')).toBe('buildman.example.com');
    expect(stripPort('[::1]:50051')).toBe('[::1]');
    expect(['127.0.0.1:5000', 'localhost', 'localhost:5000', '[::1]:5000', '127.1.2.3'].every(isLoopbackHost)).toBe(true);
    expect(['quay.example.com', '10.0.0.1:5000', '128.0.0.1'].some(isLoopbackHost)).toBe(false);
  });
});

describe.skipIf(!hasBuildah() || !BUSYBOX)('LocalExecutor running the real worker', () => {
  it('completes a build: executor → worker process → manager → buildah → OCI archive in the data dir', async () => {
    const packageUrl = await makePackage(dir, {
      Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nCMD ["/bin/busybox", "true"]\n',
      busybox: readFileSync(BUSYBOX!),
    });
    const manager = await startRecordingManager({ pack: { packageUrl, repository: 'local/app', tagNames: ['v1'] } });
    try {
      executor = new LocalExecutor(
        config({ BUILDER_BINARY_LOCATION: WORKER_FROM_SOURCE }),
        context({ grpcAddress: manager.address, registryHostname: undefined }),
      );
      await executor.start({ buildId: 'e2e', attempt: 1, token: REGISTRATION_TOKEN });
      await waitFor(async () => (await executor!.runningCount()) === 0, 'the worker to finish', 30_000);
      expect(manager.phaseNames()).toEqual(['UNPACKING', 'PULLING', 'BUILDING', 'PUSHING', 'COMPLETE']);
      expect(logged.find((l) => l.msg === 'local worker exited')?.obj).toMatchObject({ code: 0 });
      expect(existsSync(join(dir, 'data', 'images', 'local_app', 'v1.oci.tar'))).toBe(true);
      // The worker's own output reached the manager's log, without the token.
      expect(logged.some((l) => l.obj.stream === 'stderr' && l.msg?.includes('build complete'))).toBe(true);
      expect(JSON.stringify(logged)).not.toContain(REGISTRATION_TOKEN);
    } finally {
      await manager.stop();
    }
  });
});

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
