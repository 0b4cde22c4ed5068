import { spawn } from 'node:child_process';
import { executorContract } from '../contract/executor-contract.js';
import { ec2Harness } from './ec2-fixture.js';

/** The emulated machine's builder: sleeps until the instance is terminated (SIGTERM). */
const SLEEPING_WORKER = `
if (!process.env.TOKEN || !process.env.SERVER || !process.env.BUILD_UUID) process.exit(2);
process.on('SIGTERM', () => process.exit(0));
setInterval(() => {}, 60_000);
`;

executorContract('ec2 (emulated EC2 Query API)', async () => {
  const h = await ec2Harness({
    emulator: {
      runWorker: (env) => spawn(process.execPath, ['-e', SLEEPING_WORKER], { env: { ...env, PATH: process.env.PATH ?? '' }, stdio: 'ignore' }),
    },
    executor: { maxAttempts: 1 },
  });
  return {
    executor: h.executor,
    faults: { break: () => h.emulator.refuseConnections(), heal: () => h.emulator.acceptConnections() },
    workerProcesses: () => h.emulator.instances().filter((i) => i.process && i.process.exitCode === null && i.process.signalCode === null).length,
    cleanup: () => h.close(),
  };
});
