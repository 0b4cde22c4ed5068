import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { BuildManagerClient } from '../../proto/gen/buildman.js';
import type { BuildView } from '../../src/api/build-service.js';
import type { BuildRequest } from '../../src/builds/build-record.js';
import { parseConfig } from '../../src/config/load-config.js';
import { startManager } from '../../src/runtime/start-manager.js';
import type { ManagerHandle } from '../../src/runtime/manager-handle.js';
import { createLogger, silentLogger } from '../../src/util/logger.js';
import { PACKAGE_ROOT } from '../../src/util/package-root.js';

export interface Fixture {
  manager: ManagerHandle;
  dataDir: string;
  client(): BuildManagerClient;
  waitFor(id: string, pred: (b: BuildView) => boolean, timeoutMs?: number): Promise<BuildView>;
  waitFinal(id: string, timeoutMs?: number): Promise<BuildView>;
  close(): Promise<void>;
}

/** Indents a manager config (YAML mapping) into `BUILD_MANAGER: [ephemeral, {...}]`. */
function managerBlock(managerYaml: string): string {
  const lines = managerYaml.trim().split('\n');
  return lines.map((l, i) => (i === 0 ? `- ${l}` : `  ${l}`)).join('\n');
}

/**
 * A real manager (real gRPC on loopback, real worker processes) on a config written as YAML, so
 * tests go through the same config loader as `buildman serve`.
 */
export async function startFixture(managerYaml: string, topYaml = '', opts: { inspectPort?: number } = {}): Promise<Fixture> {
  const dataDir = mkdtempSync(join(tmpdir(), 'buildman-it-'));
  const yaml = `FEATURE_BUILD_SUPPORT: true\n${topYaml}\nBUILD_MANAGER:\n- ephemeral\n${managerBlock(managerYaml)}\n`;
  const config = parseConfig(yaml, {
    source: 'fixture',
    overrides: { grpcPort: 0, httpPort: 0, grpcHost: '127.0.0.1', dataDir },
    env: {},
  });
  const logger = process.env.BUILDMAN_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger();
  const manager = await startManager(config, { logger, inspectPort: opts.inspectPort });
  const clients: BuildManagerClient[] = [];
  const waitFor = async (id: string, pred: (b: BuildView) => boolean, timeoutMs = 30_000) => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const b = await manager.service.get(id);
      if (pred(b)) return b;
      if (Date.now() > deadline) throw new Error(`timed out waiting on build ${id}: last ${b.state} (${b.phase}) ${b.reason ?? ''}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  return {
    manager,
    dataDir,
    client() {
      const c = new BuildManagerClient(manager.grpcAddress, grpc.credentials.createInsecure());
      clients.push(c);
      return c;
    },
    waitFor,
    waitFinal: (id, timeoutMs) => waitFor(id, (b) => b.final, timeoutMs),
    async close() {
      for (const c of clients) c.close();
      await manager.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** A build from a URL source (scripted workers never fetch it). */
export function urlBuild(repository = 'demo/app', extra: Partial<BuildRequest> = {}): BuildRequest {
  return {
    repository,
    tags: ['latest'],
    dockerfilePath: 'Dockerfile',
    context: '/',
    source: { kind: 'url', url: 'file:///nonexistent.tar' },
    ...extra,
  };
}

/** Promise form of a unary call on the generated client. */
export function unary<Req, Res>(
  client: BuildManagerClient,
  method: 'ping' | 'registerBuildJob' | 'setPhase' | 'determineCachedTag',
  req: Req,
): Promise<Res> {
  return new Promise((resolve, reject) =>
    (client[method] as unknown as (r: Req, cb: (e: grpc.ServiceError | null, res: Res) => void) => void).call(client, req, (err, res) =>
      err ? reject(err) : resolve(res),
    ),
  );
}

/**
 * Writes an executable that runs test/fixtures/scripted-worker.mjs with SCRIPT and extra variables
 * (the local executor passes workers only Quay's environment, so they are baked in here).
 */
export function scriptedWorker(dir: string, script: string, vars: Record<string, string> = {}): string {
  const path = join(dir, `worker-${script}.sh`);
  const fixture = join(PACKAGE_ROOT, 'test/fixtures/scripted-worker.mjs');
  const assignments = Object.entries({ SCRIPT: script, ...vars })
    .map(([k, v]) => `${k}='${v}'`)
    .join(' ');
  writeFileSync(path, `#!/bin/sh\nexec env ${assignments} '${process.execPath}' '${fixture}'\n`, { mode: 0o755 });
  return path;
}

/** The non-empty lines of a file the scripted worker appends to (none when it does not exist yet). */
export function fileLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean) : [];
}
