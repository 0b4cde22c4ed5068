import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { fileLines, scriptedWorker } from '../helpers/manager-fixture.js';
import { cleanupPrefix, RedisServerChild } from '../helpers/redis.js';
import { startCluster, submit, waitAllFinal } from './cluster-fixture.js';

const ROOT = join(import.meta.dirname, '../..');
const built = existsSync(join(ROOT, 'dist/src/cli/main.js'));
const lines = fileLines;

// The cluster runs the compiled CLI (`npm test` builds first).
describe.skipIf(!built)('several managers sharing one Redis', () => {
  let stop: (() => Promise<void>) | undefined;
  const prefixes: string[] = [];
  afterEach(async () => {
    await stop?.();
    stop = undefined;
    for (const p of prefixes.splice(0)) await cleanupPrefix(p);
  });

  it('200 builds submitted across three managers all complete once, each worker talking to another instance', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-200-'));
    const starts = join(dir, 'starts');
    const dones = join(dir, 'dones');
    const prefix = `test/${randomUUID()}/`;
    prefixes.push(prefix);
    const cluster = await startCluster({
      count: 3,
      prefix,
      workerCap: 12,
      worker: scriptedWorker(dir, 'full-run', { STARTS_FILE: starts, DONE_FILE: dones, STEP_DELAY_MS: '20' }),
    });
    stop = cluster.stop;
    const { instances } = cluster;
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push((await submit(instances[i % 3], `ns${i % 7}/repo${i}`)).id);
    const final = await waitAllFinal(() => instances, ids, 150_000);
    expect(final.filter((b) => b.phase !== 'complete').map((b) => `${b.id} ${b.phase} ${b.reason}`)).toEqual([]);
    const started = lines(starts).map((l) => l.split(' ')[0]);
    expect(new Set(started).size).toBe(200);
    expect(started.length).toBe(200);
    expect(lines(dones).every((l) => l.endsWith(' true'))).toBe(true);
    for (const inst of instances) expect(inst.process.exitCode).toBe(null);
  }, 200_000);

  it('SIGKILL of the instance that owns running builds: the others take them over and every build completes once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-kill-'));
    const starts = join(dir, 'starts');
    const prefix = `test/${randomUUID()}/`;
    prefixes.push(prefix);
    const cluster = await startCluster({
      count: 3,
      prefix,
      workerCap: 10,
      worker: scriptedWorker(dir, 'full-run', { STARTS_FILE: starts, STEP_DELAY_MS: '1200' }),
    });
    stop = cluster.stop;
    const [victim, ...survivors] = cluster.instances;
    // Builds submitted to the victim are owned by it.
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push((await submit(victim, `kill/repo${i}`)).id);
    const deadline = Date.now() + 30_000;
    while (lines(starts).length < 8 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    expect(lines(starts)).toHaveLength(8);
    victim.process.kill('SIGKILL');
    await victim.exited;
    const final = await waitAllFinal(() => survivors, ids, 90_000);
    expect(final.map((b) => b.phase)).toEqual(Array(8).fill('complete'));
    // None ran twice: one worker start per build, all before the kill.
    expect(lines(starts).map((l) => l.split(' ')[0]).sort()).toEqual([...ids].sort());
    for (const inst of survivors) expect(inst.process.exitCode).toBe(null);
  }, 150_000);

  it('a lone manager killed and restarted adopts the builds it owned, and they complete', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-restart-'));
    const starts = join(dir, 'starts');
    const prefix = `test/${randomUUID()}/`;
    prefixes.push(prefix);
    // One instance whose workers talk to it directly (with one instance, "the next" is itself).
    const cluster = await startCluster({
      count: 1,
      prefix,
      workerCap: 4,
      worker: scriptedWorker(dir, 'full-run', { STARTS_FILE: starts, STEP_DELAY_MS: '800' }),
    });
    stop = cluster.stop;
    const ids: string[] = [];
    for (let i = 0; i < 4; i++) ids.push((await submit(cluster.instances[0], `restart/own${i}`)).id);
    const deadline = Date.now() + 30_000;
    while (lines(starts).length < 4 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    cluster.instances[0].process.kill('SIGKILL');
    await cluster.instances[0].exited;
    // The workers live on (their own process group) and reconnect once the port answers again.
    const again = await cluster.restart(0);
    const final = await waitAllFinal(() => [again], ids, 90_000);
    expect(final.map((b) => b.phase)).toEqual(Array(4).fill('complete'));
    expect(lines(starts).map((l) => l.split(' ')[0]).sort()).toEqual([...ids].sort());
  }, 150_000);

  it('a Redis restart mid-run: every build still ends, and no manager exits', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-redis-restart-'));
    // Persistent (AOF, fsync always), as a production Redis is: the restart keeps the data.
    const redis = await RedisServerChild.start(['--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir]);
    const prefix = `test/${randomUUID()}/`;
    const cluster = await startCluster({
      count: 2,
      prefix,
      redisPort: redis.port,
      workerCap: 6,
      worker: scriptedWorker(dir, 'full-run', { STEP_DELAY_MS: '400' }),
    });
    stop = async () => {
      await cluster.stop();
      await redis.stop();
    };
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await submit(cluster.instances[i % 2], `restart/repo${i}`)).id);
    await new Promise((r) => setTimeout(r, 1000));
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    const final = await waitAllFinal(() => cluster.instances, ids, 120_000);
    expect(final.every((b) => b.final)).toBe(true);
    expect(final.filter((b) => b.phase === 'complete').length).toBeGreaterThan(0);
    for (const inst of cluster.instances) expect(inst.process.exitCode, inst.output()).toBe(null);
  }, 180_000);
});
