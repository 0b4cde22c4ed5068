import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { PopenExecutorConfig } from '../../config/config-types.js';
import { InfraError } from '../../errors/buildman-error.js';
import { DEFAULT_WORKER_BINARY } from '../../util/package-root.js';
import type { BuildExecutor, ExecutorContext, StartRequest, StopRequest, WorkerInfo } from '../build-executor.js';

/** Quay's TLS front for workers (nginx on 55443 in front of the plaintext gRPC port). */
const SECURE_GRPC_PORT = 55443;
const STOP_GRACE_MS = 3000;
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'] as const;

interface TrackedWorker {
  buildId: string;
  attempt: number;
  createdAt: number;
  binary: string;
  /** Settles once the process is running (or failed to start). */
  started: Promise<void>;
  child?: ChildProcess;
  exited: Promise<void>;
  alive: boolean;
}

/**
 * Quay's `popen` executor: runs the worker as a child process of the manager, configured only by
 * its environment. Differences from Quay: the execution id is `<buildId>-<attempt>` so a repeated
 * start is idempotent, stopping an unknown worker is harmless, and children do not outlive `close()`.
 */
export class LocalExecutor implements BuildExecutor {
  readonly kind = 'popen' as const;
  readonly name: string;
  private readonly workers = new Map<string, TrackedWorker>();

  constructor(
    readonly config: PopenExecutorConfig,
    private readonly ctx: ExecutorContext,
  ) {
    this.name = config.NAME;
  }

  async start(req: StartRequest): Promise<string> {
    const executionId = `${req.buildId}-${req.attempt}`;
    const existing = this.workers.get(executionId);
    if (existing?.alive) {
      await existing.started.catch((err: unknown) => {
        throw spawnFailure(existing.binary, err);
      });
      return executionId;
    }

    const binary = this.config.BUILDER_BINARY_LOCATION || DEFAULT_WORKER_BINARY;
    // A .js worker (ours by default) runs on this Node, whatever node is on PATH.
    const [command, args] = binary.endsWith('.js') ? [process.execPath, [binary]] : [binary, []];
    const env = this.workerEnv(req.buildId, req.token);

    let resolveExit!: () => void;
    const tracked: TrackedWorker = {
      buildId: req.buildId,
      attempt: req.attempt,
      createdAt: Date.now(),
      binary,
      alive: true,
      started: Promise.resolve(),
      exited: new Promise<void>((r) => (resolveExit = r)),
    };
    tracked.started = new Promise<void>((resolve, reject) => {
      let child: ChildProcess;
      try {
        // Its own process group, so a stuck worker can be killed together with its build tools.
        child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
      } catch (err) {
        reject(err);
        return;
      }
      tracked.child = child;
      child.once('spawn', () => resolve());
      child.on('error', (err) => {
        // Also emitted for a failed kill; only a failed spawn matters here.
        if (child.pid === undefined) reject(err);
      });
      child.once('exit', (code, signal) => {
        tracked.alive = false;
        if (this.workers.get(executionId) === tracked) this.workers.delete(executionId);
        this.ctx.log.info({ buildId: req.buildId, executionId, code, signal }, 'local worker exited');
        resolveExit();
      });
      for (const stream of ['stdout', 'stderr'] as const) {
        createInterface({ input: child[stream]!, crlfDelay: Infinity }).on('line', (line) => {
          this.ctx.log.info({ buildId: req.buildId, executionId, stream }, line);
        });
      }
    });
    this.workers.set(executionId, tracked);

    try {
      await tracked.started;
    } catch (err) {
      tracked.alive = false;
      resolveExit();
      if (this.workers.get(executionId) === tracked) this.workers.delete(executionId);
      throw spawnFailure(binary, err);
    }
    this.ctx.log.info({ buildId: req.buildId, executionId, pid: tracked.child?.pid }, 'local worker started');
    return executionId;
  }

  /** SIGTERM, then SIGKILL to the worker's process group after 3 s; resolves when it has exited. */
  async stop(req: StopRequest): Promise<void> {
    const executionId = req.executionId ?? `${req.buildId}-${req.attempt}`;
    const tracked = this.workers.get(executionId);
    if (!tracked) return;
    // Untracked first: even if killing fails, this executor no longer counts it.
    this.workers.delete(executionId);
    await tracked.started.catch(() => {});
    const child = tracked.child;
    if (!tracked.alive || !child?.pid) return;

    signal(child.pid, 'SIGTERM');
    if (await exitsWithin(tracked.exited, STOP_GRACE_MS)) return;
    this.ctx.log.warn({ buildId: tracked.buildId, executionId }, 'local worker ignored SIGTERM; killing it');
    signal(-child.pid, 'SIGKILL');
    if (!(await exitsWithin(tracked.exited, STOP_GRACE_MS))) signal(child.pid, 'SIGKILL');
    await exitsWithin(tracked.exited, STOP_GRACE_MS);
  }

  async runningCount(): Promise<number> {
    let n = 0;
    for (const w of this.workers.values()) if (w.alive) n++;
    return n;
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    return [...this.workers.entries()].map(([executionId, w]) => ({
      buildId: w.buildId,
      attempt: w.attempt,
      executionId,
      createdAt: w.createdAt,
      running: w.alive,
    }));
  }

  /** The manager is going away: local workers go with it. */
  async close(): Promise<void> {
    const ids = [...this.workers.entries()].map(([executionId, w]) => ({ executionId, buildId: w.buildId }));
    await Promise.all(ids.map(({ executionId, buildId }) => this.stop({ buildId, attempt: 0, executionId })));
  }

  /** Quay's popen environment (reference §5.5), plus our local-build variables. */
  workerEnv(buildId: string, token: string): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {
      TOKEN: token,
      BUILD_UUID: buildId,
      SERVER: this.config.INSECURE ? this.ctx.grpcAddress : `${stripPort(this.ctx.managerHostname)}:${SECURE_GRPC_PORT}`,
      REGISTRY_HOSTNAME: this.ctx.registryHostname ?? '',
      CONTAINER_RUNTIME: this.config.CONTAINER_RUNTIME ?? 'docker',
      BUILDAH_ISOLATION: this.config.BUILDAH_ISOLATION || 'chroot',
      INSECURE: this.config.INSECURE ? 'true' : 'false',
      DOCKER_HOST: process.env.DOCKER_HOST || 'unix:///var/run/docker.sock',
      PATH: process.env.PATH || FALLBACK_PATH,
      BUILDMAN_IMAGE_DIR: join(this.ctx.dataDir, 'images'),
      BUILDMAN_STORAGE_ROOT: join(this.ctx.dataDir, 'containers'),
    };
    if (this.config.DEBUG) env.DEBUG = 'true';
    for (const name of PROXY_VARS) {
      const value = this.config[name] ?? process.env[name];
      if (value) env[name] = value;
    }
    if (this.ctx.registryHostname && isLoopbackHost(this.ctx.registryHostname)) env.REGISTRY_INSECURE = 'true';
    return env;
  }
}

function spawnFailure(binary: string, err: unknown): InfraError {
  return new InfraError(`Failed to spawn ${binary}: ${err instanceof Error ? err.message : String(err)}`, 'EXECUTOR_SPAWN_FAILED', err);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone (ESRCH) or not ours to kill: either way nothing more to do here
  }
}

function exitsWithin(exited: Promise<void>, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void exited.then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** `host:port` → `host`, `[::1]:port` → `[::1]`; a bare host is returned as is. */
export function stripPort(hostname: string): string {
  if (hostname.startsWith('[')) return hostname.slice(0, hostname.indexOf(']') + 1) || hostname;
  const parts = hostname.split(':');
  return parts.length === 2 ? parts[0] : hostname;
}

/** Whether a registry host (with optional port) is this machine, where plain HTTP is normal. */
export function isLoopbackHost(hostWithPort: string): boolean {
  const host = stripPort(hostWithPort).replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127(\.\d{1,3}){3}$/.test(host);
}
