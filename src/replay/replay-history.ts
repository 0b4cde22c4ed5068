import { BUILD_JOB_MACHINE_VERSION, type BuildJobInput } from '../../machines/build-job-machine.js';
import type { HistoryEntry } from '../persistence/actor-store.js';
import { stateString } from '../runtime/build-phase.js';
import { inputFromHistory } from './history-recording.js';
import { ReplayStepError, replayEvents } from './replay-events.js';
import { wouldDo, type WouldDo } from './would-do.js';

export interface ReplayStep {
  /** 1-based entry number. */
  step: number;
  /** When the entry was recorded (epoch ms), and how long after the first entry. */
  at: number;
  offsetMs: number;
  event: HistoryEntry['event'];
  /** Dotted states; `before` is undefined at the build's creation. */
  before: string | undefined;
  after: string;
  /** The state the history recorded after this event. */
  recorded: string;
  /** What the live actor would have done: start/stop a worker, set a deadline, requeue, finish. */
  effects: WouldDo[];
}

export interface ReplayDivergence {
  step: number;
  event: string;
  /** The recorded state after the step. */
  expected: string;
  /** The state the machine reached instead; undefined when it threw. */
  got?: string;
  /** What the machine threw, if it did. */
  error?: string;
  /** The machine version that recorded the step, and this machine's. */
  recordedVersion: number;
  currentVersion: number;
  /** One sentence for people. */
  message: string;
}

export interface ReplayReport {
  steps: ReplayStep[];
  /** The replayed state after the last step replayed (the diverging step's, if it diverged). */
  finalState: string | undefined;
  /** The recorded state after the last step replayed (so with `until`, the state at that step). */
  recordedFinalState: string | undefined;
  diverged?: ReplayDivergence;
  /** Some entry was recorded by another machine version than this one. */
  versionMismatch: boolean;
  machineVersion: number;
  recordedVersions: number[];
}

/**
 * Re-runs a persisted history through the pure machine, with no side effects, and checks every
 * step against the recorded state. The first mismatch, or an entry the machine throws on, is the
 * divergence; the replay stops there. `input` defaults to what the history's creation entry carries.
 */
export function replayHistory(entries: readonly HistoryEntry[], opts: { until?: number; input?: BuildJobInput } = {}): ReplayReport {
  const input = opts.input ?? inputFromHistory(entries);
  if (!input) {
    throw new Error("the history does not start with the build's creation (xstate.init with its input), so there is nothing to replay from; pass the input");
  }
  const recordedVersions = [...new Set(entries.map((e) => e.machineVersion))];
  const report: ReplayReport = {
    steps: [],
    finalState: undefined,
    recordedFinalState: undefined,
    versionMismatch: recordedVersions.some((v) => v !== BUILD_JOB_MACHINE_VERSION),
    machineVersion: BUILD_JOB_MACHINE_VERSION,
    recordedVersions,
  };
  const t0 = entries[0]?.at ?? 0;
  try {
    for (const r of replayEvents(entries, { input, until: opts.until })) {
      const after = stateString(r.snapshot.value);
      report.steps.push({
        step: r.step,
        at: r.entry.at,
        offsetMs: r.entry.at - t0,
        event: r.entry.event,
        before: r.before && stateString(r.before.value),
        after,
        recorded: r.entry.state,
        effects: wouldDo(r.actions),
      });
      report.finalState = after;
      report.recordedFinalState = r.entry.state;
      if (after !== r.entry.state) {
        report.diverged = divergence(r.step, r.entry, { got: after });
        break;
      }
    }
  } catch (err) {
    if (!(err instanceof ReplayStepError)) throw err;
    report.recordedFinalState = err.entry.state;
    report.diverged = divergence(err.step, err.entry, { error: err.cause instanceof Error ? err.cause.message : String(err.cause) });
  }
  return report;
}

function divergence(step: number, entry: HistoryEntry, outcome: { got?: string; error?: string }): ReplayDivergence {
  const recordedVersion = entry.machineVersion;
  const what = outcome.error === undefined ? `the machine now goes to ${outcome.got}` : `the machine throws: ${outcome.error}`;
  const version =
    recordedVersion === BUILD_JOB_MACHINE_VERSION
      ? 'same machine version'
      : `recorded by machine version ${recordedVersion}, this is version ${BUILD_JOB_MACHINE_VERSION}`;
  return {
    step,
    event: entry.event.type,
    expected: entry.state,
    ...outcome,
    recordedVersion,
    currentVersion: BUILD_JOB_MACHINE_VERSION,
    message: `after ${entry.event.type} the history recorded ${entry.state}, but ${what} (${version})`,
  };
}
