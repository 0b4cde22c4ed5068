import { spawn } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { createInterface } from 'node:readline';

export type OutputStream = 'stdout' | 'stderr';

export interface RunOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string;
  /** Aborting stops the child (SIGTERM, then SIGKILL after `killGraceMs`) and rejects with the signal's reason. */
  signal?: AbortSignal;
  /** Called for every output line as it arrives, so a build's steps reach the manager while it runs. */
  onLine?: (line: string, stream: OutputStream) => void;
  /** Kill the child when it runs longer than this. */
  timeoutMs?: number;
  killGraceMs?: number;
}

export interface RunResult {
  /** Exit code, or null when a signal ended the child. */
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The last stderr lines, for error messages. */
  stderrTail: string[];
  timedOut: boolean;
}

const TAIL_LINES = 20;

/** Thrown when the program itself cannot be started (usually ENOENT: not installed). */
export class SpawnError extends Error {
  override readonly name = 'SpawnError';
  constructor(
    readonly command: string,
    readonly errno: string | undefined,
    cause: unknown,
  ) {
    super(`cannot run ${command}: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
}

/** Runs a program without a shell, streaming its output line by line. */
export function runCommand(command: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    opts.signal?.throwIfAborted();
    const child = spawn(command, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const stderrTail: string[] = [];
    let timedOut = false;
    let killTimer: NodeJS.Timeout | undefined;

    const stop = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), opts.killGraceMs ?? 3000);
      killTimer.unref();
    };
    const onAbort = () => stop();
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    const timeout =
      opts.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            timedOut = true;
            stop();
          }, opts.timeoutMs);

    for (const stream of ['stdout', 'stderr'] as const) {
      const rl = createInterface({ input: child[stream], crlfDelay: Infinity });
      rl.on('line', (line) => {
        if (stream === 'stderr') {
          stderrTail.push(line);
          if (stderrTail.length > TAIL_LINES) stderrTail.shift();
        }
        opts.onLine?.(line, stream);
      });
    }

    const cleanup = () => {
      opts.signal?.removeEventListener('abort', onAbort);
      if (timeout) clearTimeout(timeout);
      if (killTimer) clearTimeout(killTimer);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      cleanup();
      reject(new SpawnError(command, err.code, err));
    });
    // 'close' comes after both output pipes are drained, so every line has been delivered.
    child.once('close', (code, signal) => {
      cleanup();
      if (opts.signal?.aborted) reject(opts.signal.reason);
      else resolve({ code, signal, stderrTail, timedOut });
    });
  });
}

/** Finds an executable on a PATH string, like `command -v`. */
export async function findExecutable(name: string, pathVar: string | undefined): Promise<string | undefined> {
  const candidates = isAbsolute(name) ? [name] : (pathVar ?? '').split(':').filter(Boolean).map((dir) => join(dir, name));
  for (const candidate of candidates) {
    try {
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}
