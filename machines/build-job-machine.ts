import { assign, not, setup, spawnChild, stateIn, stopChild, type SnapshotFrom } from 'xstate';
import { executorMachine } from './executor-machine.js';
import type { JobEvent, PullMetadata, WorkerPhase } from './job-events.js';

/**
 * Bumped whenever states, events or their meaning change, so a recorded history from another
 * version is reported as a divergence instead of being replayed wrongly. (Naming the chart's
 * actions and guards for export changed none of them, nor any journaled event: still 1.)
 */
export const BUILD_JOB_MACHINE_VERSION = 1;

/** One configured executor as this build sees it: its place in the fallback order and its filters. */
export interface ExecutorChoice {
  name: string;
  /** Tried only while the claim's retries_remaining ≥ this (Quay's MINIMUM_RETRY_THRESHOLD). */
  minimumRetryThreshold: number;
  /** The namespace whitelist / staged rollout verdict for this build's namespace, decided at submit. */
  allowed: boolean;
  /** Seconds the worker has to register once started (SETUP_TIME, default 500). */
  setupTime: number;
}

export interface BuildJobInput {
  buildId: string;
  executors: ExecutorChoice[];
  /** First retry delay after an infrastructure failure, doubling per attempt. */
  retryBackoffSeconds: number;
  createdAt: number;
}

export interface AttemptFailure {
  attempt: number;
  executor?: string;
  reason: string;
}

export interface BuildJobContext extends BuildJobInput {
  attempt: number;
  retriesRemaining: number;
  /** Index in `executors` of the executor being tried; -1 when none. */
  executorIndex: number;
  executorName?: string;
  executionId?: string;
  pullMetadata?: PullMetadata;
  /** Why the current/last attempt failed or why the build ended. */
  reason?: string;
  failures: AttemptFailure[];
  claimedAt?: number;
  scheduledAt?: number;
  registeredAt?: number;
  finishedAt?: number;
}

const MAX_BACKOFF_SECONDS = 600;

/** Next executor index at or after `from` that may run this attempt, or -1. */
export function nextEligible(executors: readonly ExecutorChoice[], from: number, retriesRemaining: number): number {
  for (let i = from; i < executors.length; i++) {
    const e = executors[i];
    if (e.allowed && e.minimumRetryThreshold <= retriesRemaining) return i;
  }
  return -1;
}

const currentExecutor = (context: BuildJobContext) => context.executors[context.executorIndex];
/** One child per try, so a stale child's events and done event can never be taken for the current one's. */
const childId = (context: BuildJobContext) => `executor-${context.attempt}-${context.executorIndex}`;
const isCurrentAttempt = ({ context, event }: { context: BuildJobContext; event: JobEvent }) =>
  'attempt' in event && event.attempt === context.attempt && event.executorName === currentExecutor(context)?.name;

const phaseIs =
  (phase: WorkerPhase) =>
  ({ event }: { event: JobEvent }) =>
    event.type === 'worker.phase' && event.phase === phase;

/** The stopWorker call for the attempt in context (its executor is known even when the start failed). */
const stopCurrentWorker = {
  type: 'stopWorker',
  params: ({ context }: { context: BuildJobContext }) => ({
    executorName: context.executorName ?? currentExecutor(context).name,
    attempt: context.attempt,
    executionId: context.executionId,
  }),
} as const;

type EventOf<T extends JobEvent['type']> = Extract<JobEvent, { type: T }>;

/** The context of a claimed attempt: a new attempt number, nothing of the last attempt's worker. */
function claimAttempt(context: BuildJobContext, claim: EventOf<'job.claimed'>, executorIndex: number): Partial<BuildJobContext> {
  return {
    attempt: context.attempt + 1,
    retriesRemaining: claim.retriesRemaining,
    executorIndex,
    executorName: undefined,
    executionId: undefined,
    claimedAt: claim.at,
  };
}

function failWith(context: BuildJobContext, reason: string): Partial<BuildJobContext> {
  const executor = context.executorName ?? context.executors[context.executorIndex]?.name;
  return { reason, failures: [...context.failures, { attempt: context.attempt, executor, reason }] };
}

/**
 * The life of one build (reference §2, with DESIGN.md's fixes). Every side effect is a named action
 * or actor that the runtime provides; the defaults here do nothing, which is what replay wants.
 * Every action, guard and actor in the chart is referred to by name, so `machine.config` is plain
 * JSON that Stately's visualizer imports without losing a transition, guard or action.
 */
export const buildJobMachine = setup({
  types: {
    input: {} as BuildJobInput,
    context: {} as BuildJobContext,
    events: {} as JobEvent,
  },
  actors: { executor: executorMachine },
  actions: {
    /** Sets the job's liveness deadline: the worker must register (and heartbeat) within `seconds`. */
    startDeadline: (_, _params: { seconds: number }) => {},
    /** Stops an attempt's worker, or tears down whatever a failed start may have created. Idempotent. */
    stopWorker: (_, _params: { executorName: string; attempt: number; executionId?: string }) => {},
    /** Puts the queue item back for a later attempt and releases the job's worker slot. */
    requeue: (_, _params: { retryAfterSeconds: number }) => {},
    /** Removes the queue item and releases the job's worker slot: the build is over. */
    finish: (_, _params: { outcome: 'complete' | 'error' | 'cancelled' | 'expired' }) => {},
    /** Counts an executor passed over after a failed start (Quay's quay_build_fallback_total). */
    countFallback: (_, _params: { executorName: string; reason: string }) => {},
    /** Starts the `executor` child for the executor being tried (spawned, not invoked: xstate/graph's test models refuse invocations). */
    spawnExecutor: spawnChild('executor', {
      id: ({ context }) => childId(context),
      input: ({ context }) => ({ buildId: context.buildId, attempt: context.attempt, executorName: currentExecutor(context).name }),
    }),
    stopExecutor: stopChild(({ context }) => childId(context)),
    startAttempt: assign(({ context, event }) => {
      const claim = event as EventOf<'job.claimed'>;
      return { ...claimAttempt(context, claim, nextEligible(context.executors, 0, claim.retriesRemaining)), reason: undefined };
    }),
    startAttemptWithoutExecutor: assign(({ context, event }) => {
      const claim = claimAttempt(context, event as EventOf<'job.claimed'>, -1);
      const reason = 'no configured executor may run this build now (namespace whitelist, STAGED_ROLLOUT or MINIMUM_RETRY_THRESHOLD)';
      return { ...claim, ...failWith({ ...context, ...claim }, reason) };
    }),
    recordWorkerStarted: assign(({ event }) => {
      const started = event as EventOf<'executor.started'>;
      return { executorName: started.executorName, executionId: started.executionId, scheduledAt: started.at };
    }),
    recordStartFailure: assign(({ context, event }) => {
      const failed = event as EventOf<'executor.failed'>;
      return { failures: [...context.failures, { attempt: context.attempt, executor: failed.executorName, reason: failed.reason }] };
    }),
    advanceExecutor: assign({
      executorIndex: ({ context }) => nextEligible(context.executors, context.executorIndex + 1, context.retriesRemaining),
    }),
    noExecutorLeft: assign(({ event }) => {
      const failed = event as EventOf<'executor.failed'>;
      return { reason: `no executor could start a worker; last: ${failed.executorName}: ${failed.reason}` };
    }),
    failSchedulingTimeout: assign(({ context }) => failWith(context, `scheduling on ${currentExecutor(context).name} did not finish in time`)),
    failRegistrationTimeout: assign(({ context }) =>
      failWith(context, `the worker did not register within ${currentExecutor(context).setupTime} s`),
    ),
    failHeartbeatTimeout: assign(({ context }) => failWith(context, 'the worker stopped sending heartbeats')),
    recordRegistered: assign({ registeredAt: ({ event }) => (event as EventOf<'worker.registered'>).at }),
    recordPullMetadata: assign({ pullMetadata: ({ event }) => (event as EventOf<'worker.phase'>).pullMetadata }),
    markCancelled: assign(({ event }) => {
      const cancel = event as EventOf<'job.cancel'>;
      return { reason: cancel.reason ?? 'cancelled', finishedAt: cancel.at };
    }),
    markFinished: assign({ finishedAt: ({ event }) => ('at' in event ? event.at : undefined) }),
  },
  guards: {
    hasEligibleExecutor: ({ context, event }) =>
      event.type === 'job.claimed' && nextEligible(context.executors, 0, event.retriesRemaining) >= 0,
    isCurrentAttempt,
    /** The failed start is the current attempt's, and another executor may still try it. */
    canFallBack: (args) =>
      isCurrentAttempt(args) && nextEligible(args.context.executors, args.context.executorIndex + 1, args.context.retriesRemaining) >= 0,
    hasRetriesLeft: ({ context }) => context.retriesRemaining > 0,
    /** Quay refuses to cancel a pushing build. */
    isNotPushing: not(stateIn('#buildJob.running.pushing')),
    phaseWaiting: phaseIs('waiting'),
    phaseUnpacking: phaseIs('unpacking'),
    phasePulling: phaseIs('pulling'),
    phaseBuilding: phaseIs('building'),
    phasePushing: phaseIs('pushing'),
    phaseComplete: phaseIs('complete'),
    phaseError: phaseIs('error'),
  },
}).createMachine({
  id: 'buildJob',
  context: ({ input }) => ({
    ...input,
    attempt: 0,
    retriesRemaining: 0,
    executorIndex: -1,
    failures: [],
  }),
  initial: 'queued',
  states: {
    queued: {
      description: 'Waiting in the queue for a free worker slot; waiting costs no retry.',
      on: {
        'job.claimed': [
          { guard: 'hasEligibleExecutor', target: 'scheduling', actions: 'startAttempt' },
          { target: 'retrying', actions: 'startAttemptWithoutExecutor' },
        ],
        'job.cancel': { target: 'cancelled', actions: 'markCancelled' },
      },
    },
    scheduling: {
      description: 'One executor child per try, in configured order; a failed try falls back to the next.',
      entry: 'spawnExecutor',
      exit: 'stopExecutor',
      on: {
        'executor.started': { guard: 'isCurrentAttempt', target: 'waitingForRegistration', actions: 'recordWorkerStarted' },
        'executor.failed': [
          {
            guard: 'canFallBack',
            target: 'scheduling',
            reenter: true,
            actions: [
              stopCurrentWorker,
              { type: 'countFallback', params: ({ event }) => ({ executorName: event.executorName, reason: event.reason }) },
              'recordStartFailure',
              'advanceExecutor',
            ],
          },
          { guard: 'isCurrentAttempt', target: 'retrying', actions: [stopCurrentWorker, 'recordStartFailure', 'noExecutorLeft'] },
        ],
        'job.expired': { target: 'retrying', actions: [stopCurrentWorker, 'failSchedulingTimeout'] },
        'job.cancel': { target: 'cancelled', actions: [stopCurrentWorker, 'markCancelled'] },
      },
    },
    waitingForRegistration: {
      description: 'The worker runs; it must call RegisterBuildJob before its setup time runs out.',
      entry: { type: 'startDeadline', params: ({ context }) => ({ seconds: currentExecutor(context).setupTime }) },
      on: {
        'worker.registered': { target: 'running', actions: 'recordRegistered' },
        'job.expired': { target: 'retrying', actions: [stopCurrentWorker, 'failRegistrationTimeout'] },
        'job.cancel': { target: 'cancelled', actions: [stopCurrentWorker, 'markCancelled'] },
      },
    },
    running: {
      description: "The worker's phases, as it reports them with SetPhase. Heartbeats keep the job alive.",
      initial: 'waiting',
      states: {
        waiting: {},
        unpacking: {},
        pulling: {},
        building: {},
        pushing: {
          description: 'Quay refuses to cancel a build that is pushing: a half-pushed tag is worse than a finished one.',
        },
      },
      on: {
        'worker.phase': [
          { guard: 'phaseComplete', target: 'complete', actions: 'markFinished' },
          { guard: 'phaseError', target: 'error', actions: 'markFinished' },
          { guard: 'phaseWaiting', target: '.waiting' },
          { guard: 'phaseUnpacking', target: '.unpacking' },
          { guard: 'phasePulling', target: '.pulling', actions: 'recordPullMetadata' },
          { guard: 'phaseBuilding', target: '.building' },
          { guard: 'phasePushing', target: '.pushing' },
        ],
        'job.expired': { target: 'retrying', actions: [stopCurrentWorker, 'failHeartbeatTimeout'] },
        'job.cancel': { guard: 'isNotPushing', target: 'cancelled', actions: [stopCurrentWorker, 'markCancelled'] },
      },
    },
    retrying: {
      description: 'An infrastructure failure: requeue with backoff while retries remain.',
      always: [
        {
          guard: 'hasRetriesLeft',
          target: 'queued',
          actions: {
            type: 'requeue',
            params: ({ context }) => ({
              retryAfterSeconds: Math.min(MAX_BACKOFF_SECONDS, context.retryBackoffSeconds * 2 ** Math.max(0, context.attempt - 1)),
            }),
          },
        },
        { target: 'expired', actions: 'markFinished' },
      ],
    },
    complete: { type: 'final', entry: [stopCurrentWorker, { type: 'finish', params: { outcome: 'complete' } }] },
    error: {
      type: 'final',
      description: 'The build itself failed (the worker said ERROR): not retried.',
      entry: [stopCurrentWorker, { type: 'finish', params: { outcome: 'error' } }],
    },
    cancelled: { type: 'final', entry: { type: 'finish', params: { outcome: 'cancelled' } } },
    expired: {
      type: 'final',
      description: 'Infrastructure failures used up every retry.',
      entry: { type: 'finish', params: { outcome: 'expired' } },
    },
  },
});

export type BuildJobSnapshot = SnapshotFrom<typeof buildJobMachine>;
