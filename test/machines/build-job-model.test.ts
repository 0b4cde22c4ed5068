/**
 * Model-based tests: xstate/graph walks the build-job chart with a fixed set of sample events,
 * and every generated path is replayed on a live actor (effects recorded, executor child parked on
 * a start that never settles, so executor.* events are sent by hand for the current attempt).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { AnyTransitionDefinition, StateValue } from 'xstate';
import {
  adjacencyMapToArray,
  createTestModel,
  getAdjacencyMap,
  getStateNodes,
  type AnyStateNode,
  type StatePath,
} from 'xstate/graph';
import { buildJobMachine, type BuildJobInput, type BuildJobSnapshot } from '../../machines/build-job-machine.js';
import type { JobEvent, WorkerPhase } from '../../machines/job-events.js';
import { Job, cancel, claimed, executor, expired, phase, registered } from './harness.js';

const PHASES: WorkerPhase[] = ['waiting', 'unpacking', 'pulling', 'building', 'pushing', 'complete', 'error'];

/**
 * Two executor configurations, because no single one reaches every guard branch with claims of 2
 * and 0 retries: the first has a fallback (A, then B once retries ≥ 1; C never allowed), the second
 * has no executor eligible for either claim.
 */
const configs: Record<string, BuildJobInput> = {
  'fallback A → B, C disallowed': {
    buildId: 'model-1',
    executors: [executor('A'), executor('B', { minimumRetryThreshold: 1, setupTime: 300 }), executor('C', { allowed: false })],
    retryBackoffSeconds: 30,
    createdAt: 0,
  },
  'no eligible executor': {
    buildId: 'model-2',
    executors: [executor('A', { minimumRetryThreshold: 3 }), executor('C', { allowed: false })],
    retryBackoffSeconds: 30,
    createdAt: 0,
  },
};

type Context = BuildJobSnapshot['context'];

/** The sample events, built from the current context so executor.* events name the current attempt. */
function sampleEvents(context: Context): JobEvent[] {
  const current = { attempt: context.attempt, executorName: context.executors[context.executorIndex]?.name ?? '(none)' };
  return [
    claimed(2),
    claimed(0),
    { type: 'executor.started', ...current, executionId: `exec-${context.attempt}`, at: 2_000 },
    { type: 'executor.failed', ...current, reason: 'refused', failure: 'retryable' },
    registered(),
    ...PHASES.map((p) => phase(p, 4_000, p === 'pulling' ? { base_image: 'alpine' } : undefined)),
    expired(),
    cancel(),
  ];
}

/** What tells sample events apart, leaving out what comes from context (attempt, executor). */
function label(event: JobEvent): string {
  if (event.type === 'job.claimed') return `job.claimed(${event.retriesRemaining})`;
  if (event.type === 'worker.phase') return `worker.phase(${event.phase})`;
  return event.type;
}

/**
 * A state of the model: the state value plus the context that decides what can happen next. The
 * attempt counter and the failure list grow without bound, so they are left out (the state space
 * stays finite, and a requeued build is the same model state however often it was requeued).
 */
const key = (snapshot: BuildJobSnapshot) =>
  JSON.stringify([snapshot.value, snapshot.context.retriesRemaining, snapshot.context.executorIndex]);

const traversal = (input: BuildJobInput) => ({
  input,
  events: (snapshot: BuildJobSnapshot) => sampleEvents(snapshot.context),
  serializeState: key,
});

const pathToValue = (path: readonly string[]): StateValue =>
  path.slice(0, -1).reduceRight<StateValue>((inner, k) => ({ [k]: inner }), path[path.length - 1]);

/** Every transition of the chart, one per candidate (event × guard branch), named by source and position. */
function transitionId(t: AnyTransitionDefinition): string {
  const source = t.source as AnyStateNode;
  const candidates = source.transitions.get(t.eventType) ?? source.always ?? [];
  return `${source.id} --${t.eventType || '(always)'}[${candidates.indexOf(t)}]--> ${t.target?.map((n) => n.id).join(',') ?? '(none)'}`;
}

const allTransitionIds = () =>
  getStateNodes(buildJobMachine.root).flatMap((node) => [
    ...[...node.transitions.values()].flat().map(transitionId),
    ...(node.always ?? []).map(transitionId),
  ]);

interface Coverage {
  transitions: Set<string>;
  stateNodes: Set<string>;
}

/**
 * Replays a path on a live actor, checking after each step that it is in the step's model state.
 * With `coverage`, records each transition the actor took and each state node it passed through
 * (microsteps included, so the transient `retrying` counts).
 */
async function replay(input: BuildJobInput, path: StatePath<BuildJobSnapshot, JobEvent>, coverage?: Coverage) {
  const nodes = getStateNodes(buildJobMachine.root);
  const job = new Job({
    input,
    inspect: (ev) => {
      if (!coverage || ev.type !== '@xstate.microstep' || ev.actorRef !== job.actor) return;
      for (const t of ev._transitions) coverage.transitions.add(transitionId(t));
      const snapshot = ev.snapshot as BuildJobSnapshot;
      for (const node of nodes) if (snapshot.matches(pathToValue(node.path) as never)) coverage.stateNodes.add(node.id);
    },
  });
  const model = createTestModel(buildJobMachine, traversal(input));
  const send = ({ event }: { event: JobEvent }) => {
    const live = sampleEvents(job.context).find((e) => label(e) === label(event));
    if (!live) throw new Error(`no sample event ${label(event)}`);
    job.send(live);
  };
  await model.testPath(path, {
    events: Object.fromEntries(EVENT_TYPES.map((t) => [t, send])),
    states: { '*': (state) => expect(key(job.snapshot)).toBe(key(state)) },
  });
  expect(job.value).toEqual(path.state.value);
  expect(job.snapshot.status).toBe(path.state.status);
  return job;
}

const EVENT_TYPES: JobEvent['type'][] = [
  'job.claimed',
  'job.expired',
  'job.cancel',
  'worker.registered',
  'worker.phase',
  'executor.started',
  'executor.failed',
];

/** The model of one configuration: its graph, shortest paths, and one path per state-changing edge. */
function explore(input: BuildJobInput) {
  const model = createTestModel(buildJobMachine, traversal(input));
  const adjacency = getAdjacencyMap(buildJobMachine, traversal(input));
  const shortest = new Map(model.getShortestPaths({ allowDuplicatePaths: true }).map((p) => [key(p.state), p]));
  const edges = adjacencyMapToArray(adjacency).filter((e) => key(e.state) !== key(e.nextState));
  const edgePaths = edges.map((edge): StatePath<BuildJobSnapshot, JobEvent> => {
    const prefix = shortest.get(key(edge.state));
    if (!prefix) throw new Error(`no path to ${key(edge.state)}`);
    return { state: edge.nextState, steps: [...prefix.steps, { event: edge.event, state: edge.nextState }], weight: prefix.weight + 1 };
  });
  return { model, adjacency, shortest, edges, edgePaths };
}

describe.each(Object.entries(configs))('model: %s', (_name, input) => {
  const { model, adjacency, edges, edgePaths } = explore(input);

  it('every model state has a shortest path, and the live actor follows it', async () => {
    for (const path of model.getShortestPaths()) await replay(input, path);
  });

  it('every state-changing transition, reached by its shortest prefix, replays on the live actor', async () => {
    for (const [i, path] of edgePaths.entries()) {
      const job = await replay(input, path);
      expect(key(job.snapshot), `${key(edges[i].state)} --${label(edges[i].event)}-->`).toBe(key(edges[i].nextState));
    }
  });

  it('no state is a trap: a final state is reachable from every state', () => {
    const canFinish = new Set(Object.keys(adjacency).filter((k) => adjacency[k as keyof typeof adjacency].state.status === 'done'));
    for (let grew = true; grew; ) {
      grew = false;
      for (const [k, { transitions }] of Object.entries(adjacency)) {
        if (canFinish.has(k)) continue;
        const next = Object.values(transitions) as Array<{ state: BuildJobSnapshot }>;
        if (next.some((t) => canFinish.has(key(t.state)))) {
          canFinish.add(k);
          grew = true;
        }
      }
    }
    expect(Object.keys(adjacency).filter((k) => !canFinish.has(k))).toEqual([]);
  });
});

describe('model coverage across both configurations', () => {
  const coverage: Coverage = { transitions: new Set(), stateNodes: new Set() };
  beforeAll(async () => {
    for (const input of Object.values(configs)) for (const path of explore(input).edgePaths) await replay(input, path, coverage);
  });

  it('reaches every state node of the chart, leaf and compound, including the transient retrying', () => {
    const all = getStateNodes(buildJobMachine.root).map((n) => n.id);
    expect(all).toContain('buildJob.retrying');
    expect(all).toContain('buildJob.running');
    expect([...coverage.stateNodes].sort()).toEqual(all.sort());
  });

  it('takes every transition of the chart: each event handler and guard branch, and retrying’s always', () => {
    const all = allTransitionIds();
    expect(all.length).toBeGreaterThan(20);
    expect(all.filter((t) => !coverage.transitions.has(t))).toEqual([]);
  });
});
