/**
 * Replay of a real recorded history: a real manager (real gRPC, real worker processes) runs a build
 * that falls back once (the first executor's binary does not exist), expires once (the first
 * worker never registers) and then completes. Its history is exported with the CLI, replayed from
 * the file, and compared with what was recorded; tampered histories must diverge, not crash.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StateValue } from 'xstate';
import { BUILD_JOB_MACHINE_VERSION } from '../../machines/build-job-machine.js';
import { startHttpServer, type HttpServerHandle } from '../../src/api/http-server.js';
import type { CliContext } from '../../src/cli/cli-context.js';
import { runCli } from '../../src/cli/program.js';
import type { HistoryEntry } from '../../src/persistence/actor-store.js';
import type { HistoryRecording } from '../../src/replay/history-recording.js';
import { replayEvents } from '../../src/replay/replay-events.js';
import { replayHistory, type ReplayReport } from '../../src/replay/replay-history.js';
import { stateString } from '../../src/runtime/build-phase.js';
import { silentLogger } from '../../src/util/logger.js';
import { PACKAGE_ROOT } from '../../src/util/package-root.js';
import { startFixture, urlBuild, type Fixture } from '../helpers/manager-fixture.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  lastLine: string;
}

async function cli(args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const ctx: CliContext = { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), env: { BUILDMAN_URL: http.url }, exitCode: 0 };
  const code = await runCli(args, ctx);
  return { code, stdout, stderr, lastLine: stdout.trimEnd().split('\n').at(-1) ?? '' };
}

/**
 * A worker whose first start sleeps without registering (so that attempt expires) and whose later
 * starts run the whole protocol to COMPLETE.
 */
function flakyWorker(dir: string): string {
  const path = join(dir, 'flaky-worker.sh');
  const fixture = join(PACKAGE_ROOT, 'test/fixtures/scripted-worker.mjs');
  writeFileSync(
    path,
    `#!/bin/sh
if mkdir '${dir}/first-start' 2>/dev/null; then script=never-register; else script=full-run; fi
exec env SCRIPT="$script" STEP_DELAY_MS=10 '${process.execPath}' '${fixture}'
`,
    { mode: 0o755 },
  );
  return path;
}

let fx: Fixture;
let http: HttpServerHandle;
let dir: string;
let buildId: string;
let file: string;
let recording: HistoryRecording;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'buildman-replay-'));
  // Two retries: attempt 1 claims with 1 left (both executors eligible), attempt 2 with 0 (only `flaky`).
  fx = await startFixture(`ALLOWED_WORKER_COUNT: 2
BUILDMAN_RETRY_BACKOFF_SECONDS: 0
BUILDMAN_BUILD_RETRIES: 2
EXECUTORS:
- EXECUTOR: popen
  NAME: broken
  BUILDER_BINARY_LOCATION: ${join(dir, 'no-such-worker')}
  INSECURE: true
  MINIMUM_RETRY_THRESHOLD: 1
  SETUP_TIME: 2
- EXECUTOR: popen
  NAME: flaky
  BUILDER_BINARY_LOCATION: ${flakyWorker(dir)}
  INSECURE: true
  SETUP_TIME: 2`);
  http = await startHttpServer(fx.manager.service, { host: '127.0.0.1', port: 0, logger: silentLogger() });
  const build = await fx.manager.service.submit(urlBuild('replay/flaky'));
  buildId = build.id;
  const done = await fx.waitFinal(build.id, 30_000);
  expect(done.phase).toBe('complete');
  // The history is written behind the record: wait until it holds the final state.
  for (let waited = 0; (await fx.manager.service.history(buildId)).at(-1)?.state !== 'complete'; waited += 25) {
    if (waited > 5_000) throw new Error('the history never reached complete');
    await new Promise((r) => setTimeout(r, 25));
  }
  file = join(dir, 'history.json');
  const exported = await cli(['history', buildId, '--export', file]);
  expect(exported.code).toBe(0);
  expect(exported.stdout).toContain(`to ${file}`);
  recording = JSON.parse(readFileSync(file, 'utf8')) as HistoryRecording;
}, 60_000);

afterAll(async () => {
  await http?.close();
  await fx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The recording with some entries changed, written to a file of its own. */
function tampered(name: string, change: (entries: HistoryEntry[]) => HistoryEntry[]): string {
  const path = join(dir, `${name}.json`);
  const copy = structuredClone(recording);
  writeFileSync(path, JSON.stringify({ ...copy, entries: change(copy.entries) }));
  return path;
}

/** The states the history went through, without repeats. */
const moves = (states: string[]) => states.filter((s, i) => s !== states[i - 1]);

describe('a recorded build that fell back once, expired once, then completed', () => {
  it('was exported with its input and every entry', () => {
    expect(recording.buildId).toBe(buildId);
    expect(recording.machineVersion).toBe(BUILD_JOB_MACHINE_VERSION);
    expect(recording.input).toMatchObject({
      buildId,
      retryBackoffSeconds: 0,
      executors: [
        { name: 'broken', minimumRetryThreshold: 1, allowed: true, setupTime: 2 },
        { name: 'flaky', minimumRetryThreshold: 0, allowed: true, setupTime: 2 },
      ],
    });
    expect(recording.entries[0].event.type).toBe('xstate.init');
    const types = recording.entries.map((e) => e.event.type);
    expect(types.filter((t) => t === 'executor.failed')).toHaveLength(1);
    expect(types.filter((t) => t === 'job.expired')).toHaveLength(1);
    expect(moves(recording.entries.map((e) => e.state))).toEqual([
      'queued',
      'scheduling',
      'waitingForRegistration',
      'queued',
      'scheduling',
      'waitingForRegistration',
      'running.waiting',
      'running.building',
      'running.unpacking',
      'running.pulling',
      'running.building',
      'running.pushing',
      'complete',
    ]);
  });

  it('replays from the file to the same state at every step, with no divergence', () => {
    const report = replayHistory(recording.entries);
    expect(report.diverged).toBeUndefined();
    expect(report.versionMismatch).toBe(false);
    expect(report.steps.map((s) => s.after)).toEqual(recording.entries.map((e) => e.state));
    expect(report.finalState).toBe('complete');
    expect(report.recordedFinalState).toBe('complete');
    expect(report.steps[0]).toMatchObject({ step: 1, before: undefined, after: 'queued', offsetMs: 0 });
  });

  it('lists what the actor would have done: start, fall back, stop, requeue, start again, finish', () => {
    const effects = replayHistory(recording.entries).steps.flatMap((s) => s.effects);
    expect(effects.map((e) => [e.effect, 'executorName' in e.params ? e.params.executorName : undefined])).toEqual([
      ['startWorker', 'broken'],
      ['stopWorker', 'broken'],
      ['countFallback', 'broken'],
      ['startWorker', 'flaky'],
      ['startDeadline', undefined],
      ['stopWorker', 'flaky'],
      ['requeue', undefined],
      ['startWorker', 'flaky'],
      ['startDeadline', undefined],
      ['stopWorker', 'flaky'],
      ['finish', undefined],
    ]);
    expect(effects.find((e) => e.effect === 'requeue')?.params).toEqual({ retryAfterSeconds: 0 });
    expect(effects.find((e) => e.effect === 'startDeadline')?.params).toEqual({ seconds: 2 });
    expect(effects.at(-1)?.params).toEqual({ outcome: 'complete' });
    expect(effects.filter((e) => e.effect === 'startWorker').map((e) => e.params.attempt)).toEqual([1, 1, 2]);
  });

  it('`buildman replay FILE` prints the timeline and says it matches (exit 0)', async () => {
    const run = await cli(['replay', file]);
    expect(run.code).toBe(0);
    expect(run.lastLine).toBe('replay matches the recorded final state complete');
    expect(run.stdout).toMatch(/^ {3}1 +\+0\.000s +created +∅ → queued/m);
    expect(run.stdout).toMatch(/executor\.failed .*scheduling → scheduling +stop worker on broken \(attempt 1\); count fallback from broken; start worker on flaky \(attempt 1\)/);
    expect(run.stdout).toMatch(/job\.expired .*waitingForRegistration → queued +stop worker on flaky \(attempt 1, \S+\); requeue, retry in 0 s/);
    expect(run.stdout).toMatch(/worker\.phase phase=complete .*running\.pushing → complete +stop worker on flaky \(attempt 2, \S+\); finish as complete/);
  });

  it('`buildman replay ID` reads the same history from the server', async () => {
    const fromServer = await cli(['replay', buildId]);
    const fromFile = await cli(['replay', file]);
    expect(fromServer.code).toBe(0);
    expect(fromServer.stdout).toBe(fromFile.stdout);
  });

  it('--until N stops at step N and compares with the state recorded there', async () => {
    const at = recording.entries.findIndex((e) => e.event.type === 'job.expired') + 1;
    const report = replayHistory(recording.entries, { until: at });
    expect(report.steps).toHaveLength(at);
    expect(report.finalState).toBe('queued');
    expect(report.recordedFinalState).toBe('queued');

    const run = await cli(['replay', file, '--until', String(at)]);
    expect(run.code).toBe(0);
    expect(run.lastLine).toBe(`replay matches the recorded state queued at step ${at} of ${recording.entries.length}`);
    expect((await cli(['replay', file, '--until', '0'])).code).toBe(2);
  });

  it('--json prints the report', async () => {
    const run = await cli(['replay', file, '--json']);
    const report = JSON.parse(run.stdout) as ReplayReport;
    expect(report.steps).toHaveLength(recording.entries.length);
    expect(report.finalState).toBe('complete');
    expect(report.diverged).toBeUndefined();
  });

  it('yields { event, snapshot } per step, for feeding an inspector', () => {
    const pairs = [...replayEvents(recording.entries, { input: recording.input! })];
    expect(pairs.map((p) => p.event)).toEqual(recording.entries.map((e) => e.event));
    expect(pairs.at(-1)?.snapshot.status).toBe('done');
    expect(pairs.at(-1)?.snapshot.context.attempt).toBe(2);
  });
});

describe('a history that no longer fits the machine', () => {
  it('from an older machine version, whose states were named differently: DIVERGED, exit 1, no crash', async () => {
    const old = tampered('older-version', (entries) =>
      entries.map((e) => ({ ...e, machineVersion: 0, state: e.state === 'waitingForRegistration' ? 'starting' : e.state })),
    );
    const step = recording.entries.findIndex((e) => e.state === 'waitingForRegistration') + 1;
    const run = await cli(['replay', old]);
    expect(run.code).toBe(1);
    expect(run.lastLine).toBe(
      `DIVERGED at step ${step}: after executor.started the history recorded starting, but the machine now goes to waitingForRegistration (recorded by machine version 0, this is version ${BUILD_JOB_MACHINE_VERSION})`,
    );
    expect(run.stdout).toContain(`note: recorded by machine version 0; this machine is version ${BUILD_JOB_MACHINE_VERSION}`);

    const report = JSON.parse((await cli(['replay', old, '--json'])).stdout) as ReplayReport;
    expect(report.versionMismatch).toBe(true);
    expect(report.diverged).toMatchObject({ step, expected: 'starting', got: 'waitingForRegistration', recordedVersion: 0 });
    expect(report.steps).toHaveLength(step);
  });

  it('with an event the machine no longer knows: diverges at that event', () => {
    const entries = structuredClone(recording.entries);
    const expiry = entries.findIndex((e) => e.event.type === 'job.expired');
    entries[expiry].event = { type: 'job.timeout', at: entries[expiry].at };
    const report = replayHistory(entries);
    expect(report.diverged).toMatchObject({ step: expiry + 1, event: 'job.timeout', expected: 'queued', got: 'waitingForRegistration' });
    expect(report.versionMismatch).toBe(false);
    expect(report.diverged?.message).toContain('same machine version');
  });

  it('whose input makes the machine throw: the throw is the divergence', () => {
    const input = { ...recording.input!, executors: [null as never] };
    const report = replayHistory(recording.entries, { input });
    expect(report.diverged).toMatchObject({ step: 2, event: 'job.claimed', expected: 'scheduling' });
    expect(report.diverged?.got).toBeUndefined();
    expect(report.diverged?.error).toMatch(/null/);
    expect(report.diverged?.message).toMatch(/the machine throws/);
  });

  it('a version mismatch whose states still fit replays, and says so', async () => {
    const relabelled = tampered('relabelled', (entries) => entries.map((e) => ({ ...e, machineVersion: 0 })));
    const run = await cli(['replay', relabelled]);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('note: recorded by machine version 0');
    expect(run.lastLine).toBe('replay matches the recorded final state complete');
  });

  it('without its creation entry there is no input: a clear error, not a crash', async () => {
    expect(() => replayHistory(recording.entries.slice(1))).toThrow(/does not start with the build's creation/);
    const headless = join(dir, 'headless.json');
    writeFileSync(headless, JSON.stringify({ ...recording, input: null, entries: recording.entries.slice(1) }));
    const run = await cli(['replay', headless]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/does not start with its creation/);
  });

  it('a missing file is named, not looked up as a build id', async () => {
    const run = await cli(['replay', join(dir, 'missing.json')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('no such file');
  });

  it('a file that is not a history is refused with the fix', async () => {
    const bad = join(dir, 'not-a-history.json');
    writeFileSync(bad, JSON.stringify({ hello: 'world' }));
    const run = await cli(['replay', bad]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/buildman history ID --export FILE/);
  });
});

describe('replay into the inspector', () => {
  it('plays the recorded events through a live actor to the inspector protocol, ending where the build ended', async () => {
    const { replayToInspector } = await import('../../src/replay/replay-to-inspector.js');
    const seen: Array<{ type: string; actorId: string; value?: unknown; event?: string }> = [];
    const final = await replayToInspector(recording, {
      inspect: (_buildId, ev) =>
        seen.push({
          type: ev.type,
          actorId: (ev.actorRef as unknown as { id: string }).id,
          value: ev.type === '@xstate.snapshot' ? (ev.snapshot as unknown as { value: unknown }).value : undefined,
          event: ev.type === '@xstate.event' ? ev.event.type : undefined,
        }),
    });
    expect(final).toBe('complete');
    expect(seen[0]).toMatchObject({ type: '@xstate.actor', actorId: buildId });
    const rootEvents = seen.filter((s) => s.type === '@xstate.event' && s.actorId === buildId).map((s) => s.event);
    expect(rootEvents).toEqual(expect.arrayContaining(['job.claimed', 'executor.failed', 'job.expired', 'worker.registered', 'worker.phase']));
    const states = seen.filter((s) => s.type === '@xstate.snapshot' && s.actorId === buildId).map((s) => stateString(s.value as StateValue));
    expect(states.at(-1)).toBe('complete');
    // The same states, in the same order, as the recording.
    const recorded = moves(recording.entries.filter((e) => e.event.type !== 'xstate.init' && !e.event.type.startsWith('xstate.done.actor.')).map((e) => e.state));
    const replayed = moves(states);
    expect(replayed.slice(-recorded.length)).toEqual(recorded);
  });

  it('buildman replay FILE --inspect 0 serves the replay on a WebSocket', async () => {
    const run = await cli(['replay', file, '--inspect', '0', '--step-ms', '0', '--hold', '0']);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/inspector stream: ws:\/\/127\.0\.0\.1:\d+\?build=/);
    expect(run.stdout).toMatch(/replayed into the inspector, ending in complete/);
  });
});
