/**
 * Submit → worker start, on the embedded default (memory orchestrator, local executor).
 *
 *   npm run build && node dist/bench/submit-to-start.js [runs]
 *
 * Three figures, medians over `runs` builds, in the same run so the machine's noise hits all:
 * - baseline: a bare `spawn` of the marker worker to its first statement (what no manager can beat);
 * - submit → worker process running: the same marker worker, started by buildman;
 * - submit → registered: the real reference worker (bin/buildman-worker.js) dialling back and
 *   calling RegisterBuildJob.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseConfig } from '../src/config/load-config.js';
import { startManager } from '../src/runtime/start-manager.js';
import { silentLogger } from '../src/util/logger.js';
import { DEFAULT_WORKER_BINARY } from '../src/util/package-root.js';
import { median } from './stats.js';

const runs = Number(process.argv[2] ?? 15);
const dir = mkdtempSync(join(tmpdir(), 'bm-bench-'));
const marker = join(dir, 'marker-worker.mjs');
// Writes the wall-clock time of its first statement, then waits to be stopped.
writeFileSync(marker, `import { writeFileSync } from 'node:fs';\nwriteFileSync(process.env.MARK_DIR + '/' + (process.env.BUILD_UUID || 'bare'), String(Date.now()));\nsetInterval(() => {}, 1000);\n`);
const markerSh = join(dir, 'marker.sh');
writeFileSync(markerSh, `#!/bin/sh\nexec env MARK_DIR='${dir}' '${process.execPath}' '${marker}'\n`, { mode: 0o755 });

const waitFile = async (file: string) => {
  while (!existsSync(file)) await new Promise((r) => setTimeout(r, 2));
  return Number(readFileSync(file, 'utf8'));
};

async function bare(): Promise<number> {
  const file = join(dir, 'bare');
  rmSync(file, { force: true });
  const t0 = Date.now();
  const child = spawn(markerSh, [], { stdio: 'ignore' });
  const at = await waitFile(file);
  child.kill('SIGKILL');
  return at - t0;
}

async function manager(worker: string, extraYaml = '') {
  const config = parseConfig(
    `FEATURE_BUILD_SUPPORT: true\nBUILD_MANAGER:\n- ephemeral\n- ALLOWED_WORKER_COUNT: 50\n  EXECUTORS:\n  - EXECUTOR: popen\n    BUILDER_BINARY_LOCATION: ${worker}\n    INSECURE: true\n${extraYaml}`,
    { source: 'bench', overrides: { grpcPort: 0, httpPort: 0, grpcHost: '127.0.0.1', dataDir: join(dir, 'data') }, env: {} },
  );
  return startManager(config, { logger: silentLogger() });
}

const request = (repo: string) => ({
  repository: repo,
  tags: ['latest'],
  dockerfilePath: 'Dockerfile',
  context: '/',
  source: { kind: 'url' as const, url: 'file:///nonexistent.tar' },
});

// Baseline and buildman runs alternate, so load from other processes hits both alike.
const baseline: number[] = [];
await bare(); // warm the file cache for node and the script

const m1 = await manager(markerSh);
const toProcess: number[] = [];
for (let i = 0; i < runs; i++) {
  baseline.push(await bare());
  const t0 = Date.now();
  const b = await m1.service.submit(request(`bench/start${i}`));
  toProcess.push((await waitFile(join(dir, b.id))) - t0);
  await m1.service.cancel(b.id);
}
await m1.stop();

const m2 = await manager(DEFAULT_WORKER_BINARY);
const toRegistered: number[] = [];
for (let i = 0; i < runs; i++) {
  const t0 = Date.now();
  const b = await m2.service.submit(request(`bench/reg${i}`));
  for (;;) {
    const v = await m2.service.get(b.id);
    if (v.state.startsWith('running') || v.final) break;
    await new Promise((r) => setTimeout(r, 2));
  }
  toRegistered.push(Date.now() - t0);
  await m2.service.cancel(b.id).catch(() => {});
}
await m2.stop();
rmSync(dir, { recursive: true, force: true });

const fmt = (ms: number) => `${ms.toFixed(0)} ms`;
console.log(`submit-to-start (${runs} runs, medians)`);
console.log(`  baseline: bare spawn → process running      ${fmt(median(baseline))}`);
console.log(`  buildman: submit → worker process running   ${fmt(median(toProcess))}  (${(median(toProcess) / median(baseline)).toFixed(2)}× baseline)`);
console.log(`  buildman: submit → reference worker registered ${fmt(median(toRegistered))}`);
console.log(`  target: submit → worker start < 1000 ms: ${median(toProcess) < 1000 ? 'met' : 'NOT met'}`);
