import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import * as grpc from '@grpc/grpc-js';
import { BuildManagerClient, Phase, type BuildPack } from '../../proto/gen/buildman.js';
import { startHttpServer } from '../../src/api/http-server.js';
import { loadConfig } from '../../src/config/load-config.js';
import type { ManagerHandle } from '../../src/runtime/manager-handle.js';
import { startManager } from '../../src/runtime/start-manager.js';
import { createLogger, silentLogger } from '../../src/util/logger.js';

export interface ApiFixture {
  /** Base URL of the HTTP API. */
  url: string;
  manager: ManagerHandle;
  /** Every line the HTTP server logged. */
  httpLog: string[];
  /**
   * Plays the worker of a build over gRPC: registers with the token the manager handed the worker,
   * reports `phases` in order (logging one step with BUILDING), and returns the job token.
   */
  playWorker(buildId: string, phases: Phase[]): Promise<string>;
  close(): Promise<void>;
}

/**
 * A real manager (config through `loadConfig`, real gRPC on loopback) with the real HTTP API in
 * front. Its one executor starts a "parked" worker that only records the registration token the
 * manager handed it, and waits: builds stay put until a test cancels them or plays their worker.
 */
export async function startApiFixture(opts: { maxContextBytes?: number } = {}): Promise<ApiFixture> {
  const dir = mkdtempSync(join(tmpdir(), 'buildman-api-'));
  const worker = join(dir, 'parked-worker.sh');
  writeFileSync(worker, `#!/bin/sh\nprintf '%s' "$TOKEN" > '${dir}'/"$BUILD_UUID.token"\nexec sleep 600\n`, { mode: 0o755 });
  const configFile = join(dir, 'config.yaml');
  writeFileSync(
    configFile,
    `FEATURE_BUILD_SUPPORT: true
BUILDMAN_MAX_CONTEXT_BYTES: ${opts.maxContextBytes ?? 1024 * 1024}
BUILD_MANAGER:
- ephemeral
- ALLOWED_WORKER_COUNT: 50
  EXECUTORS:
  - EXECUTOR: popen
    NAME: parked
    BUILDER_BINARY_LOCATION: ${worker}
    INSECURE: true
    SETUP_TIME: 120
`,
  );
  const config = await loadConfig({
    file: configFile,
    overrides: { grpcPort: 0, httpPort: 0, grpcHost: '127.0.0.1', dataDir: join(dir, 'data') },
  });
  const manager = await startManager(config, { logger: process.env.BUILDMAN_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger() });

  const httpLog: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      httpLog.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  const http = await startHttpServer(manager.service, {
    host: '127.0.0.1',
    port: 0,
    logger: createLogger({ level: 'debug', destination, secrets: config.secrets }),
  });

  const clients: BuildManagerClient[] = [];
  const tokenOf = async (buildId: string): Promise<string> => {
    const file = join(dir, `${buildId}.token`);
    for (let waited = 0; !existsSync(file) || readFileSync(file, 'utf8') === ''; waited += 20) {
      if (waited > 15_000) throw new Error(`the worker of build ${buildId} never started`);
      await new Promise((r) => setTimeout(r, 20));
    }
    return readFileSync(file, 'utf8');
  };

  return {
    url: http.url,
    manager,
    httpLog,
    async playWorker(buildId, phases) {
      const client = new BuildManagerClient(manager.grpcAddress, grpc.credentials.createInsecure());
      clients.push(client);
      const call = <Req, Res>(method: 'registerBuildJob' | 'setPhase', req: Req) =>
        new Promise<Res>((resolve, reject) =>
          (client[method] as unknown as (r: Req, cb: (e: grpc.ServiceError | null, res: Res) => void) => void).call(client, req, (err, res) =>
            err ? reject(err) : resolve(res),
          ),
        );
      const pack = await call<{ registerJwt: string }, BuildPack>('registerBuildJob', { registerJwt: await tokenOf(buildId) });
      let seq = 0;
      for (const phase of phases) {
        await call('setPhase', { jobJwt: pack.jobJwt, sequenceNumber: ++seq, phase, pullMetadata: undefined });
        if (phase === Phase.BUILDING) {
          const logs = client.logMessage();
          await new Promise<void>((resolve, reject) => {
            logs.on('data', () => logs.end());
            logs.on('error', reject);
            logs.on('end', resolve);
            logs.write({ jobJwt: pack.jobJwt, sequenceNumber: 1, logMessage: JSON.stringify({ stream: 'Step 1/1 : FROM scratch\n' }), phase: '' });
          });
        }
      }
      return pack.jobJwt;
    },
    async close() {
      for (const client of clients) client.close();
      await http.close();
      await manager.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
