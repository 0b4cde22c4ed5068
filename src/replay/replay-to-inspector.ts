import { createActor, fromPromise } from 'xstate';
import { buildJobMachine } from '../../machines/build-job-machine.js';
import { executorMachine, type ExecutorInput, type StartWorkerOutput } from '../../machines/executor-machine.js';
import type { JobEvent } from '../../machines/job-events.js';
import type { ActorInspector } from '../inspect/actor-inspector.js';
import { stateString } from '../runtime/build-phase.js';
import type { HistoryRecording } from './history-recording.js';

/**
 * Re-drives a recorded history through a live actor of the machine, with every side effect a
 * no-op, and hands its inspection events to `inspector` — so Stately's inspector can step
 * through what happened. Returns the state it ended in, dotted as history entries record it
 * (`running.building`). Events that children raised are in the history already (the executor's
 * report to its parent), so the child's own start never settles here.
 */
export async function replayToInspector(
  recording: HistoryRecording,
  inspector: ActorInspector,
  opts: { until?: number; stepMs?: number } = {},
): Promise<string> {
  if (!recording.input) throw new Error(`the history of build ${recording.buildId} has no creation entry to replay from`);
  const machine = buildJobMachine.provide({
    actors: {
      executor: executorMachine.provide({ actors: { startWorker: fromPromise<StartWorkerOutput, ExecutorInput>(() => new Promise(() => {})) } }),
    },
  });
  const actor = createActor(machine, {
    id: recording.buildId,
    input: recording.input,
    inspect: (ev) => inspector.inspect(recording.buildId, ev),
  });
  actor.start();
  const entries = recording.entries.slice(0, opts.until ?? recording.entries.length);
  for (const entry of entries) {
    // Creation already happened at start; a child's completion notice has no transition of its own.
    if (entry.event.type === 'xstate.init' || entry.event.type.startsWith('xstate.done.actor.')) continue;
    actor.send(entry.event as unknown as JobEvent);
    if (opts.stepMs) await new Promise((r) => setTimeout(r, opts.stepMs));
  }
  const final = stateString(actor.getSnapshot().value);
  actor.stop();
  return final;
}
