/**
 * Test harness for the build-job statechart: runs it with recorded side effects and a hand-driven
 * `startWorker`, so a test can assert both where the actor is and what it asked the world to do.
 */
import {
  createActor,
  fromPromise,
  type Actor,
  type AnyEventObject,
  type InspectionEvent,
  type SimulatedClock,
  type Snapshot,
} from 'xstate';
import { buildJobMachine, type BuildJobInput, type ExecutorChoice } from '../../machines/build-job-machine.js';
import { executorMachine, type ExecutorInput, type StartWorkerOutput } from '../../machines/executor-machine.js';
import type { JobEvent, PullMetadata, WorkerPhase } from '../../machines/job-events.js';

/** A side effect the machine asked for: the action's name and its params. */
export type Effect = [name: EffectName, params: unknown];
export const EFFECT_NAMES = ['startDeadline', 'stopWorker', 'requeue', 'finish', 'countFallback'] as const;
export type EffectName = (typeof EFFECT_NAMES)[number];

/** One call of the provided `startWorker`, waiting for the test to settle it. */
export interface PendingStart {
  input: ExecutorInput;
  settled: boolean;
  resolve(output: StartWorkerOutput): void;
  reject(error: Error): void;
}

export const executor = (name: string, over: Partial<ExecutorChoice> = {}): ExecutorChoice => ({
  name,
  minimumRetryThreshold: 0,
  allowed: true,
  setupTime: 500,
  ...over,
});

export const defaultInput = (): BuildJobInput => ({
  buildId: 'build-1',
  executors: [executor('A', { setupTime: 500 }), executor('B', { setupTime: 300 })],
  retryBackoffSeconds: 30,
  createdAt: 0,
});

/** An error as a control plane adapter throws it: `kind` tells retryable from capacity/permanent. */
export function startError(message: string, kind: 'retryable' | 'capacity' | 'permanent' = 'retryable'): Error {
  return Object.assign(new Error(message), { kind });
}

/** Lets promise actors settle and their results reach the parent. */
export const flush = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

/** The machine with every side effect recorded into `effects` and every start parked in `starts`. */
export function instrumentedMachine(effects: Effect[], starts: PendingStart[]) {
  const record =
    (name: EffectName) =>
    (_: unknown, params: unknown): void => {
      effects.push([name, params]);
    };
  const startWorker = fromPromise<StartWorkerOutput, ExecutorInput>(
    ({ input }) =>
      new Promise<StartWorkerOutput>((resolve, reject) => {
        const pending: PendingStart = {
          input,
          settled: false,
          resolve: (output) => {
            pending.settled = true;
            resolve(output);
          },
          reject: (error) => {
            pending.settled = true;
            reject(error);
          },
        };
        starts.push(pending);
      }),
  );
  return buildJobMachine.provide({
    actions: {
      startDeadline: record('startDeadline'),
      stopWorker: record('stopWorker'),
      requeue: record('requeue'),
      finish: record('finish'),
      countFallback: record('countFallback'),
    },
    actors: { executor: executorMachine.provide({ actors: { startWorker } }) },
  });
}

export type InstrumentedMachine = ReturnType<typeof instrumentedMachine>;

export interface JobOptions {
  input?: Partial<BuildJobInput>;
  clock?: SimulatedClock;
  /** A persisted snapshot to restore instead of starting fresh. */
  snapshot?: Snapshot<unknown>;
  /** Sees every inspection event of the actor's system. */
  inspect?: (event: InspectionEvent) => void;
}

/** A started build-job actor plus what it recorded. */
export class Job {
  readonly input: BuildJobInput;
  readonly effects: Effect[] = [];
  readonly starts: PendingStart[] = [];
  /** Every event the root actor processed, in order (what the runtime appends to the history). */
  readonly journal: AnyEventObject[] = [];
  readonly machine: InstrumentedMachine;
  readonly actor: Actor<InstrumentedMachine>;
  private taken = 0;

  constructor(options: JobOptions = {}) {
    this.input = { ...defaultInput(), ...options.input };
    this.machine = instrumentedMachine(this.effects, this.starts);
    const actor: Actor<InstrumentedMachine> = createActor(this.machine, {
      input: this.input,
      clock: options.clock,
      snapshot: options.snapshot,
      inspect: (ev) => {
        if (ev.type === '@xstate.event' && ev.actorRef === actor) this.journal.push(ev.event);
        options.inspect?.(ev);
      },
    });
    this.actor = actor;
    actor.start();
  }

  get snapshot() {
    return this.actor.getSnapshot();
  }
  get value() {
    return this.snapshot.value;
  }
  get context() {
    return this.snapshot.context;
  }

  send(event: JobEvent): this {
    this.actor.send(event);
    return this;
  }

  /** Effects recorded since the last call. */
  take(): Effect[] {
    const fresh = this.effects.slice(this.taken);
    this.taken = this.effects.length;
    return fresh;
  }

  /** The start the machine is waiting on (the newest unsettled one). */
  pending(): PendingStart {
    const open = this.starts.filter((s) => !s.settled);
    if (open.length === 0) throw new Error('no startWorker call is pending');
    return open[open.length - 1];
  }

  async startSucceeds(executionId: string, at = 2_000): Promise<this> {
    this.pending().resolve({ executionId, at });
    await flush();
    return this;
  }

  async startFails(message: string, kind: 'retryable' | 'capacity' | 'permanent' = 'retryable'): Promise<this> {
    this.pending().reject(startError(message, kind));
    await flush();
    return this;
  }

  /** queued → scheduling → waitingForRegistration → running.waiting on the first executor. */
  async toRunning(retriesRemaining = 2, executionId = 'exec-1'): Promise<this> {
    this.send(claimed(retriesRemaining));
    await this.startSucceeds(executionId);
    return this.send(registered());
  }
}

// Event builders. Times are arbitrary but fixed, so contexts compare exactly.
export const claimed = (retriesRemaining: number, at = 1_000): JobEvent => ({ type: 'job.claimed', at, retriesRemaining });
export const registered = (at = 3_000): JobEvent => ({ type: 'worker.registered', at });
export const phase = (p: WorkerPhase, at = 4_000, pullMetadata?: PullMetadata): JobEvent =>
  pullMetadata ? { type: 'worker.phase', at, phase: p, pullMetadata } : { type: 'worker.phase', at, phase: p };
export const expired = (at = 9_000): JobEvent => ({ type: 'job.expired', at });
export const cancel = (at = 5_000, reason?: string): JobEvent =>
  reason === undefined ? { type: 'job.cancel', at } : { type: 'job.cancel', at, reason };
