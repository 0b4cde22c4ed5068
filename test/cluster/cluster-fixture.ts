import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../helpers/free-port.js';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BuildView } from '../../src/api/build-service.js';
import { PACKAGE_ROOT } from '../../src/util/package-root.js';

// The package root, whether this runs from test/ (vitest) or dist/test/ (the takeover benchmark).
const ROOT = PACKAGE_ROOT;


export interface Instance {
  name: string;
  config: string;
  dataDir: string;
  grpcPort: number;
  httpPort: number;
  url: string;
  process: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

/**
 * Several `buildman serve` processes (the compiled CLI, as an operator runs it) sharing one Redis
 * under a test prefix. Instance i hands its workers instance i+1's gRPC address, so every worker
 * talks to another instance than the one that scheduled it.
 */
export async function startCluster(opts: {
  count: number;
  redisPort?: number;
  prefix: string;
  workerCap: number;
  worker: string;
  extraManagerYaml?: string;
}): Promise<{ instances: Instance[]; dir: string; restart(i: number): Promise<Instance>; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'bm-cluster-'));
  const ports = await Promise.all(Array.from({ length: opts.count }, async () => ({ grpc: await freePort(), http: await freePort() })));
  const instances: Instance[] = [];
  for (let i = 0; i < opts.count; i++) {
    const next = ports[(i + 1) % opts.count];
    const config = join(dir, `config-${i}.yaml`);
    writeFileSync(
      config,
      `FEATURE_BUILD_SUPPORT: true
BUILDMAN_WORKER_GRPC_ADDRESS: 127.0.0.1:${next.grpc}
BUILD_MANAGER:
- ephemeral
- ALLOWED_WORKER_COUNT: ${opts.workerCap}
  ORCHESTRATOR_PREFIX: ${opts.prefix}
  ORCHESTRATOR:
    REDIS_HOST: 127.0.0.1
    REDIS_PORT: ${opts.redisPort ?? 6379}
  BUILDMAN_RETRY_BACKOFF_SECONDS: 1
  BUILDMAN_HEARTBEAT_TTL_SECONDS: 10
${(opts.extraManagerYaml ?? '').replace(/^/gm, '  ')}
  EXECUTORS:
  - EXECUTOR: popen
    BUILDER_BINARY_LOCATION: ${opts.worker}
    INSECURE: true
    SETUP_TIME: 30
`,
    );
    instances.push(launch(`m${i}`, config, ports[i], join(dir, `data-${i}`)));
  }
  for (const inst of instances) await waitHealthy(inst);
  return {
    instances,
    dir,
    /** Starts instance i again, same config, ports and data folder (after it died). */
    async restart(i: number) {
      const old = instances[i];
      const again = launch(old.name, old.config, { grpc: old.grpcPort, http: old.httpPort }, old.dataDir);
      instances[i] = again;
      await waitHealthy(again);
      return again;
    },
    async stop() {
      for (const inst of instances) if (inst.process.exitCode === null && inst.process.signalCode === null) inst.process.kill('SIGTERM');
      await Promise.all(instances.map((i) => Promise.race([i.exited, new Promise((r) => setTimeout(r, 8000))])));
      for (const inst of instances) if (inst.process.exitCode === null && inst.process.signalCode === null) inst.process.kill('SIGKILL');
    },
  };
}

/** One `buildman serve` process, as an operator runs it (the compiled CLI). */
function launch(name: string, config: string, ports: { grpc: number; http: number }, dataDir: string): Instance {
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'bin/buildman.js'),
      'serve',
      '--config',
      config,
      '--grpc-port',
      String(ports.grpc),
      '--http-port',
      String(ports.http),
      '--data-dir',
      dataDir,
      '--log-level',
      process.env.BUILDMAN_TEST_LOG ? 'info' : 'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  child.stderr!.on('data', (d: Buffer) => (out = (out + d.toString()).slice(-20_000)));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return { name, config, dataDir, grpcPort: ports.grpc, httpPort: ports.http, url: `http://127.0.0.1:${ports.http}`, process: child, output: () => out, exited };
}

async function waitHealthy(inst: Instance): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      const res = await fetch(`${inst.url}/health`);
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (inst.process.exitCode !== null) throw new Error(`${inst.name} exited: ${inst.output()}`);
    if (Date.now() > deadline) throw new Error(`${inst.name} did not become healthy: ${inst.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function submit(inst: Instance, repository: string): Promise<BuildView> {
  const res = await fetch(`${inst.url}/api/v1/builds`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ repository, archive_url: 'file:///nonexistent.tar' }),
  });
  if (res.status !== 201) throw new Error(`submit to ${inst.name}: ${res.status} ${await res.text()}`);
  return (await res.json()) as BuildView;
}

export async function getBuild(inst: Instance, id: string): Promise<BuildView> {
  const res = await fetch(`${inst.url}/api/v1/builds/${id}`);
  if (!res.ok) throw new Error(`get ${id} from ${inst.name}: ${res.status} ${await res.text()}`);
  return (await res.json()) as BuildView;
}

/** Polls until every build is final (asking any live instance), or throws with the stragglers. */
export async function waitAllFinal(live: () => Instance[], ids: string[], timeoutMs: number): Promise<BuildView[]> {
  const deadline = Date.now() + timeoutMs;
  const done = new Map<string, BuildView>();
  for (;;) {
    const pool = live();
    for (const id of ids) {
      if (done.has(id)) continue;
      const b = await getBuild(pool[Math.floor(Math.random() * pool.length)], id).catch(() => undefined);
      if (b?.final) done.set(id, b);
    }
    if (done.size === ids.length) return ids.map((id) => done.get(id)!);
    if (Date.now() > deadline) {
      const left = ids.filter((id) => !done.has(id));
      const sample = await Promise.all(left.slice(0, 5).map((id) => getBuild(pool[0], id).catch((e) => String(e))));
      throw new Error(`${left.length} builds not final: ${JSON.stringify(sample).slice(0, 1500)}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}
