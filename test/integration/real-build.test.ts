import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create as createTar } from 'tar';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasBuildah } from '../helpers/buildah.js';
import { startFixture, type Fixture } from '../helpers/manager-fixture.js';
import { hasRegistry, startRegistry, type LocalRegistry } from '../helpers/registry.js';
import type { BuildRequest } from '../../src/builds/build-record.js';

const hello = join(import.meta.dirname, '../../examples/hello');

async function tarball(dir: string, name: string): Promise<string> {
  const out = join(mkdtempSync(join(tmpdir(), 'bm-ctx-')), `${name}.tar.gz`);
  await createTar({ gzip: true, cwd: dir, file: out }, ['.']);
  return out;
}

function fromArchive(repository: string, archive: string, tags = ['latest']): BuildRequest {
  return { repository, tags, dockerfilePath: 'Dockerfile', context: '/', source: { kind: 'url', url: `file://${archive}` } };
}

const popen = `EXECUTORS:
- EXECUTOR: popen
  NAME: local
  INSECURE: true
  CONTAINER_RUNTIME: buildah
  SETUP_TIME: 60`;

describe.skipIf(!hasBuildah())('real builds with the reference worker and buildah', () => {
  let fx: Fixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  it('builds examples/hello end to end and writes the image as an OCI archive', async () => {
    fx = await startFixture(`ALLOWED_WORKER_COUNT: 2\n${popen}`);
    const build = await fx.manager.service.submit(fromArchive('demo/hello', await tarball(hello, 'hello'), ['latest', 'v1']));
    const done = await fx.waitFinal(build.id, 120_000);
    const { logs } = await fx.manager.service.logs(build.id, 0);
    expect(done.phase, logs.map((l) => l.message).join('')).toBe('complete');
    const phases = logs.filter((l) => l.type === 'phase').map((l) => l.message);
    expect(phases).toEqual(['build-scheduled', 'waiting', 'unpacking', 'pulling', 'building', 'pushing', 'complete']);
    expect(logs.some((l) => l.type === 'command' && /^Step 2\/3 : COPY hello.txt/.test(l.message))).toBe(true);
    for (const tag of ['latest', 'v1']) expect(existsSync(join(fx.dataDir, 'images', 'demo_hello', `${tag}.oci.tar`))).toBe(true);
  });

  it('a Dockerfile that fails ends the build as error at once, without a retry', async () => {
    fx = await startFixture(`ALLOWED_WORKER_COUNT: 2\nBUILDMAN_RETRY_BACKOFF_SECONDS: 0\n${popen}`);
    const dir = mkdtempSync(join(tmpdir(), 'bm-bad-'));
    writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY missing-file /x\n');
    const build = await fx.manager.service.submit(fromArchive('demo/broken', await tarball(dir, 'bad')));
    const done = await fx.waitFinal(build.id, 120_000);
    expect(done.phase).toBe('error');
    expect(done.attempt).toBe(1);
    const { logs } = await fx.manager.service.logs(build.id, 0);
    expect(logs.some((l) => l.type === 'error' && /missing-file/.test(l.message))).toBe(true);
  });

  describe.skipIf(!hasRegistry())('with SERVER_HOSTNAME pointing at a registry on loopback', () => {
    let registry: LocalRegistry;
    beforeAll(async () => {
      registry = await startRegistry();
    });
    afterAll(async () => {
      await registry?.stop();
    });

    it('pushes every tag to the registry', async () => {
      fx = await startFixture(`ALLOWED_WORKER_COUNT: 2\n${popen}`, `SERVER_HOSTNAME: ${registry.host}`);
      const build = await fx.manager.service.submit(fromArchive('demo/pushed', await tarball(hello, 'hello'), ['latest', '1.0']));
      const done = await fx.waitFinal(build.id, 120_000);
      expect(done.phase).toBe('complete');
      expect((await registry.tags('demo/pushed')).sort()).toEqual(['1.0', 'latest']);
      expect(existsSync(join(fx.dataDir, 'images', 'demo_pushed'))).toBe(false);
    });
  });
});

