import { fromPromise, sendParent, setup, assign } from 'xstate';
import type { JobEvent } from './job-events.js';

/** What the executor child is asked to do: start one worker for one attempt of one build. */
export interface ExecutorInput {
  buildId: string;
  attempt: number;
  executorName: string;
}

/** What a start returns. `at` is when it was started, taken by the side effect (not the machine). */
export interface StartWorkerOutput {
  executionId: string;
  at: number;
}

type ExecutorContext = ExecutorInput & { executionId?: string; error?: string };

/**
 * One executor attempt, spawned by the build-job actor. It owns the start call and reports the
 * outcome to its parent; teardown is the parent's `stopWorker` action, which survives the child.
 * `startWorker` is injected by the runtime; the default refuses so a forgotten wiring is loud.
 * Actions are named so `machine.config` exports to Stately without loss.
 */
export const executorMachine = setup({
  types: {
    input: {} as ExecutorInput,
    context: {} as ExecutorContext,
  },
  actors: {
    startWorker: fromPromise<StartWorkerOutput, ExecutorInput>(async () => {
      throw new Error('startWorker is not provided: give it with machine.provide({ actors })');
    }),
  },
  actions: {
    recordExecutionId: assign({ executionId: ({ event }) => (event as unknown as { output: StartWorkerOutput }).output.executionId }),
    reportStarted: sendParent(({ context, event }): JobEvent => {
      const { output } = event as unknown as { output: StartWorkerOutput };
      return { type: 'executor.started', attempt: context.attempt, executorName: context.executorName, executionId: output.executionId, at: output.at };
    }),
    recordError: assign({ error: ({ event }) => describeError((event as unknown as { error: unknown }).error) }),
    reportFailed: sendParent(({ context, event }): JobEvent => {
      const { error } = event as unknown as { error: unknown };
      return {
        type: 'executor.failed',
        attempt: context.attempt,
        executorName: context.executorName,
        reason: describeError(error),
        failure: failureKind(error),
      };
    }),
  },
}).createMachine({
  id: 'executor',
  context: ({ input }) => ({ ...input }),
  initial: 'starting',
  states: {
    starting: {
      invoke: {
        src: 'startWorker',
        input: ({ context }) => ({ buildId: context.buildId, attempt: context.attempt, executorName: context.executorName }),
        onDone: { target: 'started', actions: ['recordExecutionId', 'reportStarted'] },
        onError: { target: 'failed', actions: ['recordError', 'reportFailed'] },
      },
    },
    started: { type: 'final' },
    failed: { type: 'final' },
  },
});

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function failureKind(err: unknown): 'retryable' | 'capacity' | 'permanent' {
  const kind = (err as { kind?: unknown } | null)?.kind;
  return kind === 'capacity' || kind === 'permanent' ? kind : 'retryable';
}
