import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { fileLines, scriptedWorker, startFixture, urlBuild, type Fixture } from '../helpers/manager-fixture.js';

const lines = fileLines;
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('failure paths with real worker processes', () => {
  let fx: Fixture | undefined;
  afterEach(async () => {
    await fx?.close();
    fx = undefined;
  });

  it('a worker that never registers expires after its setup time and is retried until the budget is spent', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-noreg-'));
    const starts = join(dir, 'starts');
    const stops = join(dir, 'stops');
    fx = await startFixture(`ALLOWED_WORKER_COUNT: 2
BUILDMAN_RETRY_BACKOFF_SECONDS: 0
BUILDMAN_BUILD_RETRIES: 3
EXECUTORS:
- EXECUTOR: popen
  BUILDER_BINARY_LOCATION: ${scriptedWorker(dir, 'never-register', { STARTS_FILE: starts, STOPS_FILE: stops })}
  INSECURE: true
  SETUP_TIME: 1`);
    const build = await fx.manager.service.submit(urlBuild('expiry/never'));
    const done = await fx.waitFinal(build.id, 20_000);
    expect(done.phase).toBe('expired');
    expect(done.attempt).toBe(3);
    expect(done.reason).toMatch(/did not register within 1 s/);
    expect(lines(starts)).toHaveLength(3);
    // Every attempt's worker was stopped, none is left running.
    const pids = lines(starts).map((l) => Number(l.split(' ')[1]));
    await fx.waitFor(build.id, () => lines(stops).length === 3 && !pids.some(alive), 10_000);
  });

  it('a worker killed mid-build is noticed by expiry within the heartbeat TTL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-dead-'));
    const deaths = join(dir, 'deaths');
    fx = await startFixture(`ALLOWED_WORKER_COUNT: 2
BUILDMAN_BUILD_RETRIES: 1
BUILDMAN_HEARTBEAT_TTL_SECONDS: 2
EXECUTORS:
- EXECUTOR: popen
  BUILDER_BINARY_LOCATION: ${scriptedWorker(dir, 'die-after-heartbeat', { DEATHS_FILE: deaths })}
  INSECURE: true
  SETUP_TIME: 30`);
    const build = await fx.manager.service.submit(urlBuild('expiry/dies'));
    await fx.waitFor(build.id, (b) => b.phase === 'building', 10_000);
    const done = await fx.waitFinal(build.id, 10_000);
    const diedAt = Number(lines(deaths)[0]);
    expect(done.phase).toBe('expired');
    expect(done.reason).toBe('the worker stopped sending heartbeats');
    // TTL 2 s from the last heartbeat, which came shortly before the death; allow 1 s on top.
    expect(done.updatedAt - diedAt).toBeLessThan(3000);
  });

  it('cancel stops a running worker within 5 seconds, and a registered-but-silent one too', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-cancel-'));
    const starts = join(dir, 'starts');
    fx = await startFixture(`ALLOWED_WORKER_COUNT: 2
EXECUTORS:
- EXECUTOR: popen
  BUILDER_BINARY_LOCATION: ${scriptedWorker(dir, 'heartbeat-forever', { STARTS_FILE: starts })}
  INSECURE: true
  SETUP_TIME: 30`);
    const build = await fx.manager.service.submit(urlBuild('cancel/running'));
    await fx.waitFor(build.id, (b) => b.phase === 'building', 10_000);
    const pid = Number(lines(starts)[0].split(' ')[1]);
    expect(alive(pid)).toBe(true);
    const t0 = Date.now();
    const cancelled = await fx.manager.service.cancel(build.id);
    expect(cancelled.phase).toBe('cancelled');
    while (alive(pid) && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    expect(alive(pid)).toBe(false);
    // Cancelling again is refused, naming the phase.
    await expect(fx.manager.service.cancel(build.id)).rejects.toThrow(/already ended \(cancelled\)/);
  });

  it('waiting for a free worker slot costs no retry, and a queued build cancels at once', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bm-cap-'));
    const starts = join(dir, 'starts');
    fx = await startFixture(`ALLOWED_WORKER_COUNT: 1
BUILDMAN_BUILD_RETRIES: 1
EXECUTORS:
- EXECUTOR: popen
  BUILDER_BINARY_LOCATION: ${scriptedWorker(dir, 'heartbeat-forever', { STARTS_FILE: starts })}
  INSECURE: true
  SETUP_TIME: 30`);
    const first = await fx.manager.service.submit(urlBuild('cap/one'));
    await fx.waitFor(first.id, (b) => b.phase === 'building', 10_000);
    const second = await fx.manager.service.submit(urlBuild('cap/two'));
    const third = await fx.manager.service.submit(urlBuild('cap/three'));
    await new Promise((r) => setTimeout(r, 500));
    expect((await fx.manager.service.get(second.id)).state).toBe('queued');
    expect(lines(starts)).toHaveLength(1);
    expect((await fx.manager.service.cancel(third.id)).phase).toBe('cancelled');
    // Freeing the slot lets the second build start, on its one and only retry.
    await fx.manager.service.cancel(first.id);
    await fx.waitFor(second.id, (b) => b.phase === 'building', 10_000);
    expect((await fx.manager.service.get(second.id)).attempt).toBe(1);
    expect(lines(starts)).toHaveLength(2);
    await fx.manager.service.cancel(second.id);
  });
});
