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

/**
 * One executor attempt, spawned by the build-job actor. It owns the start call and reports the
 * outcome to its parent; teardown is the parent's `stopWorker` action, which survives the child.
 * `startWorker` is injected by the runtime; the default refuses so a forgotten wiring is loud.
 */
export const executorMachine = setup({
  types: {
    input: {} as ExecutorInput,
    context: {} as ExecutorInput & { executionId?: string; error?: string },
  },
  actors: {
    startWorker: fromPromise<StartWorkerOutput, ExecutorInput>(async () => {
      throw new Error('startWorker is not provided: give it with machine.provide({ actors })');
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
        onDone: {
          target: 'started',
          actions: [
            assign({ executionId: ({ event }) => event.output.executionId }),
            sendParent(({ context, event }): JobEvent => ({
              type: 'executor.started',
              attempt: context.attempt,
              executorName: context.executorName,
              executionId: event.output.executionId,
              at: event.output.at,
            })),
          ],
        },
        onError: {
          target: 'failed',
          actions: [
            assign({ error: ({ event }) => describeError(event.error) }),
            sendParent(({ context, event }): JobEvent => ({
              type: 'executor.failed',
              attempt: context.attempt,
              executorName: context.executorName,
              reason: describeError(event.error),
              failure: failureKind(event.error),
            })),
          ],
        },
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
