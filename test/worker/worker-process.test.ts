import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BUSYBOX, hasBuildah } from '../helpers/buildah.js';
import { REGISTRATION_TOKEN, makePackage, startRecordingManager, workerEnv, type RecordingManager } from './recording-manager.js';
import { WORKER_FROM_SOURCE } from './worker-from-source.js';

// The worker as a real process: exit codes, and SIGTERM stopping a running build.

let dir: string;
let manager: RecordingManager | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'buildman-worker-proc-'));
});
afterEach(async () => {
  await manager?.stop();
  manager = undefined;
  rmSync(dir, { recursive: true, force: true });
});

interface Run {
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
  kill: (sig: NodeJS.Signals) => void;
}

function startWorker(env: NodeJS.ProcessEnv): Run {
  const child = spawn(process.execPath, [WORKER_FROM_SOURCE], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return {
    exit: new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal }))),
    output: () => out,
    kill: (sig) => child.kill(sig),
  };
}

/** Processes whose command line contains every given word (to find a leftover build step). */
function processesWith(...words: string[]): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (words.every((w) => args.includes(w))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

describe('worker process', () => {
  it('exits 2 when the manager refuses the registration, printing its reason and no token', async () => {
    manager = await startRecordingManager({
      pack: {},
      refuse: { code: grpc.status.UNAUTHENTICATED, details: 'Invalid build token: Signature verification failed' },
    });
    const run = startWorker({ SERVER: manager.address, TOKEN: REGISTRATION_TOKEN, INSECURE: 'true', PATH: process.env.PATH });
    const { code } = await run.exit;
    expect(code).toBe(2);
    expect(run.output()).toContain('Invalid build token: Signature verification failed');
    expect(run.output()).not.toContain(REGISTRATION_TOKEN);
  });
});

describe.skipIf(!hasBuildah() || !BUSYBOX)('worker process with buildah', () => {
  it('on SIGTERM stops the running build step and exits promptly without reporting a phase', async () => {
    const packageUrl = await makePackage(dir, {
      Dockerfile: 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "sleep", "37"]\n',
      busybox: readFileSync(BUSYBOX!),
    });
    manager = await startRecordingManager({ pack: { packageUrl } });
    const run = startWorker(workerEnv(manager, dir));
    const deadline = Date.now() + 20_000;
    while (processesWith('/bin/busybox', 'sleep', '37').length === 0) {
      if (Date.now() > deadline) throw new Error(`the RUN step never started:\n${run.output()}`);
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(manager.messages()).toContainEqual({ stream: 'Step 3/3 : RUN ["/bin/busybox", "sleep", "37"]\n' });

    const stoppedAt = Date.now();
    run.kill('SIGTERM');
    const { code } = await run.exit;
    expect(code).toBe(143);
    expect(Date.now() - stoppedAt).toBeLessThan(5000);
    expect(processesWith('/bin/busybox', 'sleep', '37')).toEqual([]);
    expect(manager.phaseNames()).toEqual(['UNPACKING', 'PULLING', 'BUILDING']);
  });
});
