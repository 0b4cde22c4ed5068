import type { BuildJobInput } from '../../machines/build-job-machine.js';
import type { HistoryEntry } from '../persistence/actor-store.js';

/**
 * A build's history as a file (`buildman history ID --export FILE`), so it can be attached to a
 * bug report and replayed anywhere. `input` is what the build's actor was started with.
 */
export interface HistoryRecording {
  buildId: string;
  /** The machine version of the newest entry. */
  machineVersion: number;
  input: BuildJobInput | null;
  entries: HistoryEntry[];
}

/**
 * The input the actor was created with. XState's init event carries it, and the runtime journals
 * that event as the history's first entry (a restored actor journals no init of its own).
 */
export function inputFromHistory(entries: readonly HistoryEntry[]): BuildJobInput | undefined {
  const init = entries.find((e) => e.event.type === 'xstate.init');
  const input = init?.event.input;
  return isInput(input) ? input : undefined;
}

export function recordingOf(buildId: string, entries: HistoryEntry[]): HistoryRecording {
  return { buildId, machineVersion: entries.at(-1)?.machineVersion ?? 0, input: inputFromHistory(entries) ?? null, entries };
}

/** Reads a recording, saying what is wrong with it when it is not one. */
export function parseRecording(text: string, source: string): HistoryRecording {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new Error(`${source} is not JSON (${(err as Error).message}); expected the file written by \`buildman history ID --export FILE\``);
  }
  const r = data as Partial<HistoryRecording> | null;
  if (!r || typeof r !== 'object' || typeof r.buildId !== 'string' || !Array.isArray(r.entries)) {
    throw new Error(`${source} is not a build history: expected { buildId, machineVersion, input, entries } as \`buildman history ID --export FILE\` writes`);
  }
  r.entries.forEach((e, i) => {
    const ok = e && typeof e.at === 'number' && typeof e.state === 'string' && typeof e.event?.type === 'string';
    if (!ok) throw new Error(`${source}: entry ${i + 1} is not a history entry ({ at, event: { type }, state, machineVersion })`);
  });
  if (r.input !== null && r.input !== undefined && !isInput(r.input)) {
    throw new Error(`${source}: input is not a build-job input ({ buildId, executors, retryBackoffSeconds, createdAt })`);
  }
  return { buildId: r.buildId, machineVersion: Number(r.machineVersion ?? 0), input: r.input ?? null, entries: r.entries };
}

function isInput(value: unknown): value is BuildJobInput {
  const v = value as Partial<BuildJobInput> | null | undefined;
  return !!v && typeof v.buildId === 'string' && Array.isArray(v.executors) && typeof v.retryBackoffSeconds === 'number';
}
