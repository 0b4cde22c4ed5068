import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PopenExecutorConfig } from '../../../src/config/config-types.js';
import { LocalExecutor } from '../../../src/executors/local/local-executor.js';
import { executorContract } from './executor-contract.js';

/** A stand-in worker: records its pid, sleeps until told to stop, removes the record on the way out. */
const sleepingWorker = (pidDir: string) => `
const { writeFileSync, rmSync } = require('node:fs');
const { join } = require('node:path');
const record = join(${JSON.stringify(pidDir)}, String(process.pid));
writeFileSync(record, process.env.BUILD_UUID ?? '');
const done = () => { rmSync(record, { force: true }); process.exit(0); };
process.on('SIGTERM', done);
process.on('SIGINT', done);
setInterval(() => {}, 60_000);
`;

executorContract('local (popen)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'buildman-contract-local-'));
  const pidDir = join(dir, 'pids');
  mkdirSync(pidDir);
  // A .js file: the local executor runs it on this Node. The executor passes only the worker
  // environment, so the pid directory is written into the script.
  const worker = join(dir, 'sleeping-worker.js');
  writeFileSync(worker, sleepingWorker(pidDir));

  const config: PopenExecutorConfig = {
    EXECUTOR: 'popen',
    NAME: 'local-contract',
    MINIMUM_RETRY_THRESHOLD: 0,
    DEBUG: false,
    BUILDER_BINARY_LOCATION: worker,
    BUILDAH_ISOLATION: 'chroot',
    INSECURE: true,
  };
  const quiet = () => {};
  const executor = new LocalExecutor(config, {
    managerHostname: 'localhost',
    grpcAddress: '127.0.0.1:50051',
    installationId: 'contract',
    dataDir: join(dir, 'data'),
    log: { info: quiet, warn: quiet, error: quiet },
  });

  return {
    executor,
    faults: {
      // A worker binary that does not exist: the local "control plane" (spawn) fails.
      break: () => void (config.BUILDER_BINARY_LOCATION = join(dir, 'missing-worker')),
      heal: () => void (config.BUILDER_BINARY_LOCATION = worker),
    },
    workerProcesses: () => readdirSync(pidDir).filter((pid) => alive(Number(pid))).length,
    cleanup: async () => {
      await executor.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
