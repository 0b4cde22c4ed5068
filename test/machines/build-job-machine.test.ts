import { describe, expect, it } from 'vitest';
import { SimulatedClock, initialTransition, transition } from 'xstate';
import { getStateNodes } from 'xstate/graph';
import { buildJobMachine, type BuildJobInput } from '../../machines/build-job-machine.js';
import type { JobEvent } from '../../machines/job-events.js';
import {
  EFFECT_NAMES,
  Job,
  cancel,
  claimed,
  executor,
  expired,
  flush,
  phase,
  registered,
  type Effect,
} from './harness.js';

const HOUR = 3_600_000;

describe('happy path', () => {
  it('goes queued → scheduling → waitingForRegistration → running phases → complete', async () => {
    const job = new Job();
    expect(job.value).toBe('queued');
    expect(job.take()).toEqual([]);

    job.send(claimed(2, 1_000));
    expect(job.value).toBe('scheduling');
    expect(job.starts.map((s) => s.input)).toEqual([{ buildId: 'build-1', attempt: 1, executorName: 'A' }]);
    expect(job.context).toMatchObject({ attempt: 1, retriesRemaining: 2, executorIndex: 0, claimedAt: 1_000 });
    expect(job.take()).toEqual([]);

    await job.startSucceeds('exec-1', 2_000);
    expect(job.value).toBe('waitingForRegistration');
    expect(job.context).toMatchObject({ executorName: 'A', executionId: 'exec-1', scheduledAt: 2_000 });
    expect(job.take()).toEqual([['startDeadline', { seconds: 500 }]]);

    job.send(registered(3_000));
    expect(job.value).toEqual({ running: 'waiting' });
    expect(job.context.registeredAt).toBe(3_000);

    job.send(phase('waiting'));
    expect(job.value).toEqual({ running: 'waiting' });
    job.send(phase('unpacking'));
    expect(job.value).toEqual({ running: 'unpacking' });
    const pull = { registry_url: 'quay.io', base_image: 'library/alpine', base_image_tag: '3.20' };
    job.send(phase('pulling', 4_100, pull));
    expect(job.value).toEqual({ running: 'pulling' });
    job.send(phase('building'));
    expect(job.value).toEqual({ running: 'building' });
    job.send(phase('pushing'));
    expect(job.value).toEqual({ running: 'pushing' });
    expect(job.context.pullMetadata).toEqual(pull);
    expect(job.take()).toEqual([]);

    job.send(phase('complete', 6_000));
    expect(job.value).toBe('complete');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: 'exec-1' }],
      ['finish', { outcome: 'complete' }],
    ]);
    expect(job.context.finishedAt).toBe(6_000);
    expect(job.context.failures).toEqual([]);
    expect(job.snapshot.status).toBe('done');
  });
});

describe('executor fallback', () => {
  it('a failed start stops that executor, counts a fallback and starts the next executor', async () => {
    const job = new Job();
    job.send(claimed(2));
    await job.startFails('A refused');
    expect(job.value).toBe('scheduling');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: undefined }],
      ['countFallback', { executorName: 'A', reason: 'A refused' }],
    ]);
    expect(job.starts.map((s) => s.input)).toEqual([
      { buildId: 'build-1', attempt: 1, executorName: 'A' },
      { buildId: 'build-1', attempt: 1, executorName: 'B' },
    ]);
    expect(job.context.failures).toEqual([{ attempt: 1, executor: 'A', reason: 'A refused' }]);

    await job.startSucceeds('exec-b');
    expect(job.value).toBe('waitingForRegistration');
    expect(job.context).toMatchObject({ executorName: 'B', executionId: 'exec-b' });
    expect(job.take()).toEqual([['startDeadline', { seconds: 300 }]]);
  });

  it('when every executor fails it requeues with backoff, then expires once no retry is left', async () => {
    const job = new Job();
    job.send(claimed(1));
    await job.startFails('A down');
    await job.startFails('B down');
    expect(job.value).toBe('queued');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: undefined }],
      ['countFallback', { executorName: 'A', reason: 'A down' }],
      ['stopWorker', { executorName: 'B', attempt: 1, executionId: undefined }],
      ['requeue', { retryAfterSeconds: 30 }],
    ]);
    expect(job.context.reason).toBe('no executor could start a worker; last: B: B down');

    job.send(claimed(0));
    expect(job.starts.at(-1)?.input).toEqual({ buildId: 'build-1', attempt: 2, executorName: 'A' });
    await job.startFails('A down again');
    await job.startFails('B down again');
    expect(job.value).toBe('expired');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 2, executionId: undefined }],
      ['countFallback', { executorName: 'A', reason: 'A down again' }],
      ['stopWorker', { executorName: 'B', attempt: 2, executionId: undefined }],
      ['finish', { outcome: 'expired' }],
    ]);
    expect(job.context.failures).toEqual([
      { attempt: 1, executor: 'A', reason: 'A down' },
      { attempt: 1, executor: 'B', reason: 'B down' },
      { attempt: 2, executor: 'A', reason: 'A down again' },
      { attempt: 2, executor: 'B', reason: 'B down again' },
    ]);
    expect(job.snapshot.status).toBe('done');
  });

  it('doubles the requeue delay per attempt and caps it at 600 s', async () => {
    const job = new Job({ input: { executors: [executor('A')], retryBackoffSeconds: 200 } });
    const delays: unknown[] = [];
    for (let attempt = 1; attempt <= 4; attempt++) {
      job.send(claimed(9));
      await job.startFails(`try ${attempt}`);
      expect(job.value).toBe('queued');
      delays.push(...job.take().filter(([name]) => name === 'requeue').map(([, params]) => params));
    }
    expect(delays).toEqual([
      { retryAfterSeconds: 200 },
      { retryAfterSeconds: 400 },
      { retryAfterSeconds: 600 },
      { retryAfterSeconds: 600 },
    ]);
  });

  it('treats a capacity or permanent start failure like any other: falls back to the next executor', async () => {
    const job = new Job();
    job.send(claimed(2));
    await job.startFails('quota', 'capacity');
    expect(job.value).toBe('scheduling');
    expect(job.pending().input.executorName).toBe('B');
    await job.startFails('bad image', 'permanent');
    expect(job.value).toBe('queued');
  });
});

describe('executor eligibility', () => {
  it('skips an executor whose MINIMUM_RETRY_THRESHOLD is above the retries left', () => {
    const executors = [executor('A', { minimumRetryThreshold: 1 }), executor('B')];
    const lastChance = new Job({ input: { executors } });
    lastChance.send(claimed(0));
    expect(lastChance.starts.map((s) => s.input.executorName)).toEqual(['B']);
    expect(lastChance.context.executorIndex).toBe(1);

    const early = new Job({ input: { executors } });
    early.send(claimed(1));
    expect(early.starts.map((s) => s.input.executorName)).toEqual(['A']);
  });

  it('falls back past ineligible executors', async () => {
    const job = new Job({
      input: { executors: [executor('A'), executor('B', { minimumRetryThreshold: 2 }), executor('C', { allowed: false }), executor('D')] },
    });
    job.send(claimed(1));
    await job.startFails('A down');
    expect(job.starts.map((s) => s.input.executorName)).toEqual(['A', 'D']);
    expect(job.take()).toContainEqual(['countFallback', { executorName: 'A', reason: 'A down' }]);
  });

  it('never tries an executor that is not allowed for the namespace', async () => {
    const job = new Job({ input: { executors: [executor('X', { allowed: false }), executor('B'), executor('Y', { allowed: false })] } });
    job.send(claimed(2));
    await job.startFails('B down');
    expect(job.value).toBe('queued');
    expect(job.starts.map((s) => s.input.executorName)).toEqual(['B']);
    expect(job.take().map(([name]) => name)).toEqual(['stopWorker', 'requeue']);
  });

  it('with no eligible executor it takes the retry path without starting anything', () => {
    const job = new Job({ input: { executors: [executor('A', { minimumRetryThreshold: 3 }), executor('N', { allowed: false })] } });
    job.send(claimed(2, 1_000));
    expect(job.value).toBe('queued');
    expect(job.starts).toEqual([]);
    expect(job.take()).toEqual([['requeue', { retryAfterSeconds: 30 }]]);
    expect(job.context).toMatchObject({ attempt: 1, executorIndex: -1, claimedAt: 1_000 });
    expect(job.context.failures).toEqual([{ attempt: 1, executor: undefined, reason: expect.stringMatching(/MINIMUM_RETRY_THRESHOLD/) }]);

    job.send(claimed(0, 2_000));
    expect(job.value).toBe('expired');
    expect(job.take()).toEqual([['finish', { outcome: 'expired' }]]);
  });

  it('an attempt with no eligible executor does not blame the previous attempt’s executor', async () => {
    const job = new Job({ input: { executors: [executor('A', { minimumRetryThreshold: 1 })] } });
    await job.toRunning(1, 'exec-1');
    job.send(expired());
    expect(job.value).toBe('queued');

    job.send(claimed(0));
    expect(job.value).toBe('expired');
    expect(job.context.failures).toEqual([
      { attempt: 1, executor: 'A', reason: 'the worker stopped sending heartbeats' },
      { attempt: 2, executor: undefined, reason: expect.stringMatching(/no configured executor/) },
    ]);
    expect(job.context.executorName).toBeUndefined();
    expect(job.context.executionId).toBeUndefined();
  });
});

describe('expiry', () => {
  it('in waitingForRegistration: stops the worker and requeues while retries remain', async () => {
    const job = new Job();
    job.send(claimed(1));
    await job.startSucceeds('exec-1');
    job.take();
    job.send(expired());
    expect(job.value).toBe('queued');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: 'exec-1' }],
      ['requeue', { retryAfterSeconds: 30 }],
    ]);
    expect(job.context.failures).toEqual([{ attempt: 1, executor: 'A', reason: 'the worker did not register within 500 s' }]);
  });

  it('in waitingForRegistration with no retry left: stops the worker and expires', async () => {
    const job = new Job();
    job.send(claimed(0));
    await job.startSucceeds('exec-1');
    job.take();
    job.send(expired());
    expect(job.value).toBe('expired');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: 'exec-1' }],
      ['finish', { outcome: 'expired' }],
    ]);
  });

  it('in running: stops the worker, requeues, and on the last retry expires; failures[] keeps every reason', async () => {
    const job = await new Job().toRunning(1, 'exec-1');
    job.send(phase('building'));
    job.take();
    job.send(expired());
    expect(job.value).toBe('queued');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: 'exec-1' }],
      ['requeue', { retryAfterSeconds: 30 }],
    ]);

    await job.toRunning(0, 'exec-2');
    expect(job.context).toMatchObject({ attempt: 2, executionId: 'exec-2' });
    job.take();
    job.send(expired());
    expect(job.value).toBe('expired');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 2, executionId: 'exec-2' }],
      ['finish', { outcome: 'expired' }],
    ]);
    expect(job.context.failures).toEqual([
      { attempt: 1, executor: 'A', reason: 'the worker stopped sending heartbeats' },
      { attempt: 2, executor: 'A', reason: 'the worker stopped sending heartbeats' },
    ]);
  });

  it('in scheduling: tears down the pending start, and its late result is ignored', async () => {
    const job = new Job();
    job.send(claimed(1));
    job.send(expired());
    expect(job.value).toBe('queued');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: undefined }],
      ['requeue', { retryAfterSeconds: 30 }],
    ]);
    expect(job.context.failures).toEqual([{ attempt: 1, executor: 'A', reason: 'scheduling on A did not finish in time' }]);

    await job.startSucceeds('late');
    expect(job.value).toBe('queued');
    expect(job.context.executionId).toBeUndefined();
    expect(job.take()).toEqual([]);
  });
});

describe('build error', () => {
  it('an ERROR phase ends the build as error, with retries left and no requeue', async () => {
    const job = await new Job().toRunning(2, 'exec-1');
    job.send(phase('building'));
    job.take();
    job.send(phase('error', 7_000));
    expect(job.value).toBe('error');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: 'exec-1' }],
      ['finish', { outcome: 'error' }],
    ]);
    expect(job.context).toMatchObject({ retriesRemaining: 2, finishedAt: 7_000 });
    expect(job.snapshot.status).toBe('done');
  });
});

describe('cancel', () => {
  it('from queued: finishes as cancelled without stopping any worker', () => {
    const job = new Job();
    job.send(cancel(5_000, 'user asked'));
    expect(job.value).toBe('cancelled');
    expect(job.take()).toEqual([['finish', { outcome: 'cancelled' }]]);
    expect(job.context).toMatchObject({ reason: 'user asked', finishedAt: 5_000 });
  });

  it('from scheduling: stops the attempt’s executor, and a late start is ignored', async () => {
    const job = new Job();
    job.send(claimed(2));
    job.send(cancel());
    expect(job.value).toBe('cancelled');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: undefined }],
      ['finish', { outcome: 'cancelled' }],
    ]);
    expect(job.context.reason).toBe('cancelled');
    await job.startSucceeds('late');
    expect(job.value).toBe('cancelled');
    expect(job.take()).toEqual([]);
  });

  it('from waitingForRegistration: stops the started worker', async () => {
    const job = new Job();
    job.send(claimed(2));
    await job.startSucceeds('exec-1');
    job.take();
    job.send(cancel());
    expect(job.value).toBe('cancelled');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: 'exec-1' }],
      ['finish', { outcome: 'cancelled' }],
    ]);
  });

  it('from running.building: stops the worker', async () => {
    const job = await new Job().toRunning(2, 'exec-1');
    job.send(phase('building'));
    job.take();
    job.send(cancel());
    expect(job.value).toBe('cancelled');
    expect(job.take()).toEqual([
      ['stopWorker', { executorName: 'A', attempt: 1, executionId: 'exec-1' }],
      ['finish', { outcome: 'cancelled' }],
    ]);
  });

  it('while pushing is refused: the build stays in pushing and can still complete', async () => {
    const job = await new Job().toRunning();
    job.send(phase('pushing'));
    job.take();
    const before = job.snapshot;
    job.send(cancel());
    expect(job.value).toEqual({ running: 'pushing' });
    expect(job.context).toEqual(before.context);
    expect(job.take()).toEqual([]);
    job.send(phase('complete'));
    expect(job.value).toBe('complete');
  });
});

describe('stale and early events', () => {
  /** A job in its second attempt's scheduling, the first attempt having expired while scheduling. */
  async function secondAttempt() {
    const job = new Job();
    job.send(claimed(2));
    job.send(expired());
    job.send(claimed(1));
    expect(job.value).toBe('scheduling');
    expect(job.context.attempt).toBe(2);
    job.take();
    return job;
  }

  it('ignores executor.started from an older attempt', async () => {
    const job = await secondAttempt();
    job.send({ type: 'executor.started', attempt: 1, executorName: 'A', executionId: 'old', at: 2_000 });
    expect(job.value).toBe('scheduling');
    expect(job.context.executionId).toBeUndefined();
    expect(job.take()).toEqual([]);
    await job.startSucceeds('new');
    expect(job.context.executionId).toBe('new');
  });

  it('ignores executor.failed from an older attempt', async () => {
    const job = await secondAttempt();
    job.send({ type: 'executor.failed', attempt: 1, executorName: 'A', reason: 'old failure', failure: 'retryable' });
    expect(job.value).toBe('scheduling');
    expect(job.pending().input.executorName).toBe('A');
    expect(job.take()).toEqual([]);
  });

  it('ignores executor events naming another executor than the one being tried', () => {
    const job = new Job();
    job.send(claimed(2));
    job.send({ type: 'executor.started', attempt: 1, executorName: 'B', executionId: 'wrong', at: 2_000 });
    job.send({ type: 'executor.failed', attempt: 1, executorName: 'B', reason: 'wrong', failure: 'retryable' });
    expect(job.value).toBe('scheduling');
    expect(job.starts).toHaveLength(1);
    expect(job.take()).toEqual([]);
  });

  it('ignores worker.phase before the worker registered', async () => {
    const job = new Job();
    job.send(phase('building'));
    expect(job.value).toBe('queued');
    job.send(claimed(2));
    job.send(phase('building'));
    expect(job.value).toBe('scheduling');
    await job.startSucceeds('exec-1');
    job.take();
    job.send(phase('building'));
    job.send(phase('complete'));
    expect(job.value).toBe('waitingForRegistration');
    expect(job.take()).toEqual([]);
  });
});

describe('time', () => {
  it('holds no timers: hours of simulated time change nothing, only job.expired does', async () => {
    const clock = new SimulatedClock();
    const job = new Job({ clock });
    const scheduled = () => Object.keys(job.actor.system.getSnapshot()._scheduledEvents);
    job.send(claimed(1));
    clock.increment(5 * HOUR);
    expect(job.value).toBe('scheduling');
    await job.startSucceeds('exec-1');
    clock.increment(5 * HOUR);
    expect(job.value).toBe('waitingForRegistration');
    expect(scheduled()).toEqual([]);
    job.send(registered());
    job.send(phase('building'));
    clock.increment(48 * HOUR);
    expect(job.value).toEqual({ running: 'building' });
    expect(scheduled()).toEqual([]);

    // A restored actor on a fresh clock has no timer to lose either; the deadline arrives as an event.
    const restored = new Job({ clock: new SimulatedClock(), snapshot: JSON.parse(JSON.stringify(job.actor.getPersistedSnapshot())) });
    expect(restored.value).toEqual({ running: 'building' });
    expect(restored.take()).toEqual([]); // restoring re-runs no entry action
    restored.send(expired());
    expect(restored.value).toBe('queued');
    expect(restored.take().map(([name]) => name)).toEqual(['stopWorker', 'requeue']);
  });

  it('has no delayed transitions anywhere in the chart', () => {
    const delayed = getStateNodes(buildJobMachine.root).filter((node) => node.after.length > 0).map((node) => node.id);
    expect(delayed).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Persistence and replay run the same scripted histories.

type Step =
  | { send: JobEvent }
  | { start: 'ok'; executionId: string; at?: number }
  | { start: 'fail'; message: string };

const scripts: Record<string, { input?: Partial<BuildJobInput>; steps: Step[]; final: string }> = {
  'fallback, expiry, requeue, then complete': {
    final: 'complete',
    steps: [
      { send: claimed(1, 1_000) },
      { start: 'fail', message: 'A refused' },
      { start: 'ok', executionId: 'exec-b', at: 1_500 },
      { send: expired(2_000) },
      { send: claimed(0, 3_000) },
      { start: 'ok', executionId: 'exec-a', at: 3_500 },
      { send: registered(4_000) },
      { send: phase('waiting', 4_100) },
      { send: phase('unpacking', 4_200) },
      { send: phase('pulling', 4_300, { registry_url: 'quay.io', base_image: 'alpine' }) },
      { send: phase('building', 4_400) },
      { send: phase('pushing', 4_500) },
      { send: phase('complete', 4_600) },
    ],
  },
  'build error': {
    final: 'error',
    steps: [
      { send: claimed(2) },
      { start: 'ok', executionId: 'exec-1' },
      { send: registered() },
      { send: phase('building') },
      { send: phase('error', 8_000) },
    ],
  },
  'cancel while waiting for registration': {
    final: 'cancelled',
    steps: [{ send: claimed(2) }, { start: 'ok', executionId: 'exec-1' }, { send: cancel(6_000, 'no longer needed') }],
  },
  'expiry on the last retry': {
    final: 'expired',
    steps: [{ send: claimed(0) }, { start: 'ok', executionId: 'exec-1' }, { send: registered() }, { send: expired() }],
  },
};

async function play(job: Job, steps: Step[]) {
  for (const step of steps) {
    if ('send' in step) job.send(step.send);
    else if (step.start === 'ok') await job.startSucceeds(step.executionId, step.at);
    else await job.startFails(step.message);
  }
}

/** Every function in a value, and every key that looks like a secret, by path. */
function unsafeEntries(value: unknown, path = '$'): string[] {
  if (typeof value === 'function') return [path];
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([key, inner]) => [
    ...(/token|password|secret|private/i.test(key) ? [`${path}.${key}`] : []),
    ...unsafeEntries(inner, `${path}.${key}`),
  ]);
}

const stableValue = (value: unknown) => JSON.stringify(value);

describe('persistence', () => {
  it('every reachable state round-trips through JSON and the restored actor finishes the same way', async () => {
    const visited = new Set<string>();
    for (const [name, script] of Object.entries(scripts)) {
      const reference = new Job({ input: script.input });
      await play(reference, script.steps);
      expect(reference.value, name).toBe(script.final);

      for (let cut = 0; cut <= script.steps.length; cut++) {
        const first = new Job({ input: script.input });
        await play(first, script.steps.slice(0, cut));
        const persisted = first.actor.getPersistedSnapshot();
        expect(unsafeEntries(persisted), `${name} @${cut}`).toEqual([]);
        const json = JSON.stringify(persisted);
        expect(JSON.parse(json), `${name} @${cut}`).toEqual(persisted);
        visited.add(stableValue(first.value));

        const second = new Job({ input: script.input, snapshot: JSON.parse(json) });
        expect(second.value, `${name} @${cut}`).toEqual(first.value);
        expect(second.context, `${name} @${cut}`).toEqual(first.context);
        await flush(); // a restored scheduling re-runs its start
        await play(second, script.steps.slice(cut));

        expect(second.value, `${name} @${cut}`).toEqual(reference.value);
        expect(second.context, `${name} @${cut}`).toEqual(reference.context);
        expect(second.snapshot.status).toBe('done');
        // Nothing is done twice or skipped: both halves' effects add up to the uninterrupted run's.
        expect([...first.effects, ...second.effects], `${name} @${cut}`).toEqual(reference.effects);
      }
    }
    const stableStates = getStateNodes(buildJobMachine.root)
      .filter((node) => node.type !== 'compound' && !node.always)
      .map((node) => stableValue(node.path.length === 1 ? node.path[0] : { [node.path[0]]: node.path[1] }));
    expect([...visited].sort()).toEqual(stableStates.sort());
  });

  it('a restored scheduling re-runs the executor’s start and carries on from its result', async () => {
    const first = new Job();
    first.send(claimed(2));
    const persisted = JSON.parse(JSON.stringify(first.actor.getPersistedSnapshot()));
    first.actor.stop();

    const second = new Job({ snapshot: persisted });
    await flush();
    expect(second.starts.map((s) => s.input)).toEqual([{ buildId: 'build-1', attempt: 1, executorName: 'A' }]);
    await second.startSucceeds('exec-1');
    expect(second.value).toBe('waitingForRegistration');
    expect(second.take()).toEqual([['startDeadline', { seconds: 500 }]]);
  });
});

describe('replay', () => {
  it.each(Object.keys(scripts))('folding the journal with transition() reproduces the live actor: %s', async (name) => {
    const script = scripts[name];
    const live = new Job({ input: script.input });
    await play(live, script.steps);

    const events = live.journal.filter((e) => e.type !== 'xstate.init');
    expect(events.some((e) => e.type === 'executor.started')).toBe(true);
    let [snapshot] = initialTransition(buildJobMachine, live.input);
    const requested: Effect[] = [];
    for (const event of events) {
      // The journal also holds xstate.* internal events (a child's done event), which the machine ignores.
      const [next, actions] = transition(buildJobMachine, snapshot, event as JobEvent);
      snapshot = next;
      for (const action of actions) {
        if ((EFFECT_NAMES as readonly string[]).includes(action.type)) requested.push([action.type as Effect[0], action.params]);
      }
    }
    expect(snapshot.value).toEqual(live.value);
    expect(snapshot.context).toEqual(live.context);
    expect(snapshot.status).toBe(live.snapshot.status);
    expect(requested).toEqual(live.effects);
  });
});
