import { initialTransition, transition, type AnyEventObject } from 'xstate';
import { buildJobMachine, type BuildJobInput, type BuildJobSnapshot } from '../../machines/build-job-machine.js';
import type { JobEvent } from '../../machines/job-events.js';
import type { HistoryEntry } from '../persistence/actor-store.js';

/** One history entry run through the machine. */
export interface ReplayedEvent {
  /** 1-based: the entry's number, as `buildman history` numbers them. */
  step: number;
  entry: HistoryEntry;
  event: AnyEventObject;
  /** Before the event; undefined at the build's creation. */
  before: BuildJobSnapshot | undefined;
  snapshot: BuildJobSnapshot;
  /** What `transition()` returned for the actor to execute; nothing here was executed. */
  actions: ReadonlyArray<{ type: string; params?: unknown }>;
}

/** The machine threw on an entry (typically a history from another machine version). */
export class ReplayStepError extends Error {
  constructor(
    readonly step: number,
    readonly entry: HistoryEntry,
    override readonly cause: unknown,
  ) {
    super(`step ${step} (${entry.event.type}) made the machine throw: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'ReplayStepError';
  }
}

/**
 * Folds a recorded history through the pure build-job machine: `initialTransition` for the build's
 * creation, then `transition` per entry. No actor runs, no clock ticks and no side effect happens:
 * time comes from the events themselves. Yields `{ event, snapshot }` per step (with the snapshot
 * before and the actions the live actor would have run), so a caller can also feed them to an
 * inspector. Stops after step `until` if given.
 */
export function* replayEvents(
  entries: readonly HistoryEntry[],
  opts: { input: BuildJobInput; until?: number },
): Generator<ReplayedEvent> {
  const last = Math.min(entries.length, opts.until ?? entries.length);
  let snapshot: BuildJobSnapshot | undefined;
  for (let i = 0; i < last; i++) {
    const entry = entries[i];
    const step = i + 1;
    let before = snapshot;
    let actions: ReplayedEvent['actions'] = [];
    try {
      if (before === undefined) {
        const [initial, initActions] = initialTransition(buildJobMachine, opts.input);
        if (entry.event.type === 'xstate.init') {
          [snapshot, actions] = [initial, initActions];
        } else {
          // The history does not start at the creation (trimmed, say): begin from the initial state.
          before = initial;
          [snapshot, actions] = transition(buildJobMachine, initial, entry.event as JobEvent);
        }
      } else if (entry.event.type !== 'xstate.init') {
        [snapshot, actions] = transition(buildJobMachine, before, entry.event as JobEvent);
      } // else: only the first init creates the actor; another one changes nothing
    } catch (err) {
      throw new ReplayStepError(step, entry, err);
    }
    yield { step, entry, event: entry.event, before, snapshot: snapshot!, actions };
  }
}
