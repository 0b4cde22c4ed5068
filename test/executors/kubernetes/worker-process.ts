import { spawn, type ChildProcess } from 'node:child_process';
import type { EmulatedJob, RunWorker } from '../../emulators/kubernetes/kube-api-emulator.js';

export interface WorkerRun {
  env: Record<string, string>;
  job: EmulatedJob;
  child: ChildProcess;
}

/**
 * A stand-in worker for the emulator's pods: a real Node process with exactly the environment
 * the Job carries; it exits with `exitCode` after `runMs`, or runs until killed.
 */
export function nodeWorker(opts: { exitCode?: number; runMs?: number } = {}): { runWorker: RunWorker; runs: WorkerRun[] } {
  const runs: WorkerRun[] = [];
  const script =
    opts.runMs === undefined
      ? 'process.on("SIGTERM", () => process.exit(0)); setInterval(() => {}, 60000);'
      : `setTimeout(() => process.exit(${opts.exitCode ?? 0}), ${opts.runMs});`;
  const runWorker: RunWorker = (env, job) => {
    const child = spawn(process.execPath, ['-e', script], { env, stdio: 'ignore' });
    runs.push({ env, job, child });
    return child;
  };
  return { runWorker, runs };
}
