import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BuildView } from '../../src/api/build-service.js';
import type { ManagerHandle } from '../../src/runtime/manager-handle.js';
import { scriptedWorker, startFixture, urlBuild, type Fixture } from '../helpers/manager-fixture.js';
import { connectInspector, rootDone, rootOf, type InspectClient, type WireEvent } from './inspect-client.js';

const PULL_PASSWORD = 'hunter2-pull-password';
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\./;

let dir: string;
let fx: Fixture;
let manager: ManagerHandle;
let url: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'buildman-inspect-'));
  // The scripted worker runs the whole protocol; this wrapper first keeps the token it was given.
  const scripted = scriptedWorker(dir, 'full-run', { STEP_DELAY_MS: '30' });
  const worker = join(dir, 'keep-token.sh');
  writeFileSync(worker, `#!/bin/sh\nprintf '%s' "$TOKEN" > '${dir}'/"$BUILD_UUID.token"\nexec '${scripted}'\n`, { mode: 0o755 });
  fx = await startFixture(
    `ALLOWED_WORKER_COUNT: 5
EXECUTORS:
- EXECUTOR: popen
  NAME: local
  BUILDER_BINARY_LOCATION: ${worker}
  INSECURE: true
  SETUP_TIME: 60`,
    '',
    { inspectPort: 0 },
  );
  manager = fx.manager;
  expect(manager.inspectPort).toBeGreaterThan(0);
  url = `ws://127.0.0.1:${manager.inspectPort}`;
});
afterAll(async () => {
  await fx?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const waitFinal = (id: string): Promise<BuildView> => fx.waitFinal(id);

/** The subsequence of `wanted` found in `seen`, in order: equal to `wanted` when all are there in order. */
function inOrder<T>(seen: T[], wanted: T[]): T[] {
  const found: T[] = [];
  let i = 0;
  for (const item of seen) if (i < wanted.length && JSON.stringify(item) === JSON.stringify(wanted[i])) found.push(wanted[i++]);
  return found;
}

describe('serve --inspect: the Stately inspector stream of live builds', () => {
  let all: InspectClient;
  let onlyA: InspectClient;
  let a: BuildView;
  let b: BuildView;

  beforeAll(async () => {
    all = await connectInspector(url);
    a = await manager.service.submit(urlBuild('inspect/one', { pullCredentials: { username: 'robot', password: PULL_PASSWORD } }));
    onlyA = await connectInspector(`${url}/?build=${a.id}`);
    b = await manager.service.submit(urlBuild('inspect/two'));
    expect((await waitFinal(a.id)).phase).toBe('complete');
    expect((await waitFinal(b.id)).phase).toBe('complete');
    await all.until((events) => rootDone(events, a.id) && rootDone(events, b.id));
    await onlyA.until((events) => rootDone(events, a.id));
  });
  afterAll(() => {
    all?.close();
    onlyA?.close();
  });

  it('registers the build actor with the machine definition first, then its executor child', () => {
    const [first] = onlyA.events;
    expect(first.type).toBe('@xstate.actor');
    expect(first.name).toBe(a.id);
    expect(first._version).toMatch(/^\d+\.\d+\.\d+$/);
    const definition = JSON.parse(first.definition!);
    expect(definition.id).toBe('buildJob');
    expect(Object.keys(definition.states)).toEqual(expect.arrayContaining(['queued', 'scheduling', 'waitingForRegistration', 'running', 'complete']));
    // @statelyai/inspect writes the config with sorted keys; the states are all there.
    expect(Object.keys(definition.states.running.states).sort()).toEqual(['building', 'pulling', 'pushing', 'unpacking', 'waiting']);
    const executor = onlyA.events.find((e) => e.type === '@xstate.actor' && e.parentId === first.sessionId);
    expect(executor?.name).toMatch(/^executor-1-0$/);
    expect(JSON.parse(executor!.definition!).id).toBe('executor');
  });

  it('carries the events the build actor processed and its snapshots, in order', () => {
    const root = rootOf(onlyA.events, a.id)!.sessionId;
    const rootEvents = onlyA.events.filter((e) => e.sessionId === root);
    const received = rootEvents.filter((e) => e.type === '@xstate.event').map((e) => (e.event!.type === 'worker.phase' ? `phase:${e.event!.phase}` : e.event!.type));
    const expected = ['xstate.init', 'job.claimed', 'executor.started', 'worker.registered', 'phase:building', 'phase:unpacking', 'phase:pulling', 'phase:building', 'phase:pushing', 'phase:complete'];
    expect(inOrder(received, expected)).toEqual(expected);

    const states = rootEvents.filter((e) => e.type === '@xstate.snapshot').map((e) => e.snapshot!.value);
    const path = ['queued', 'scheduling', 'waitingForRegistration', { running: 'building' }, { running: 'unpacking' }, { running: 'pulling' }, { running: 'building' }, { running: 'pushing' }, 'complete'];
    expect(inOrder(states, path)).toEqual(path);
    // Each snapshot comes after the event that caused it, and the stream ends in the final state.
    const claimed = rootEvents.findIndex((e) => e.type === '@xstate.event' && e.event!.type === 'job.claimed');
    const scheduling = rootEvents.findIndex((e) => e.type === '@xstate.snapshot' && e.snapshot!.value === 'scheduling');
    expect(claimed).toBeGreaterThanOrEqual(0);
    expect(scheduling).toBeGreaterThan(claimed);
    const last = rootEvents.filter((e) => e.type === '@xstate.snapshot').at(-1)!;
    expect(last.snapshot).toMatchObject({ status: 'done', value: 'complete' });
    expect(last.snapshot!.context).toMatchObject({ buildId: a.id, attempt: 1, executorName: 'local' });
  });

  it('?build= keeps out every other build, while an unfiltered client sees both', () => {
    const rootA = rootOf(onlyA.events, a.id)!.sessionId;
    expect(rootOf(onlyA.events, b.id)).toBeUndefined();
    for (const e of onlyA.events) expect(e.type === '@xstate.actor' && e.sessionId === rootA ? rootA : e.rootId).toBe(rootA);
    const rootB = rootOf(all.events, b.id)!.sessionId;
    expect(all.events.some((e) => e.rootId === rootB && e.type === '@xstate.event' && e.event!.type === 'worker.registered')).toBe(true);
    expect(all.events.some((e) => e.rootId === rootA)).toBe(true);
  });

  it('sends no secret: no build token, no JWT, no pull password, no secret-named field', () => {
    const token = readFileSync(join(dir, `${a.id}.token`), 'utf8');
    expect(token.split('.')).toHaveLength(3);
    expect(all.raw.length).toBeGreaterThan(20);
    for (const text of all.raw) {
      expect(text).not.toContain(token);
      expect(text).not.toContain(PULL_PASSWORD);
      expect(text).not.toMatch(JWT);
    }
    const keys = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) v.forEach(walk);
      else if (v && typeof v === 'object') for (const [k, inner] of Object.entries(v)) keys.add(k), walk(inner);
    };
    all.events.forEach(walk);
    expect([...keys].filter((k) => /token|jwt|password|credential/i.test(k))).toEqual([]);
  });

  it('replays the recent events to a client that connects after the build ended', async () => {
    const late = await connectInspector(`${url}/?build=${a.id}`);
    try {
      await late.until((events) => rootDone(events, a.id), 5000);
      expect(late.events[0]).toMatchObject({ type: '@xstate.actor', name: a.id });
      expect(late.raw).toEqual(onlyA.raw);
    } finally {
      late.close();
    }
  });
});

describe('the inspection port', () => {
  it('refuses a malformed ?build= with close code 1008', async () => {
    const client = await connectInspector(`${url}/?build=${encodeURIComponent('../x y')}`);
    expect(await client.closed).toEqual({ code: 1008, reason: 'build must be a build id' });
  });

  it('serves a bridge page for Stately’s hosted inspector over plain HTTP', async () => {
    const res = await fetch(`http://127.0.0.1:${manager.inspectPort}/`);
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('https://stately.ai/inspect');
    expect(html).toContain("new WebSocket('ws://' + location.host + '/' + location.search)");
  });

  it('listens on loopback only', async () => {
    const { networkInterfaces } = await import('node:os');
    const other = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && i.family === 'IPv4' && !i.internal);
    if (!other) return; // no non-loopback address on this machine
    await expect(fetch(`http://${other.address}:${manager.inspectPort}/`)).rejects.toThrow();
  });
});
