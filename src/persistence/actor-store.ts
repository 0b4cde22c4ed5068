/**
 * Where build actors are persisted: the latest snapshot (to restore an actor on another
 * instance) and the history of every event the actor processed (to replay and debug it).
 * Neither ever holds a secret: the machine's context and events carry no token or password.
 */

/** One processed event, with the state it led to. */
export interface HistoryEntry {
  /** Epoch ms when the event was processed. */
  at: number;
  /** The event as the actor received it (internal `xstate.*` events included, for exact replay). */
  event: { type: string; [key: string]: unknown };
  /** The state after the event, dotted (`running.building`). */
  state: string;
  /** `BUILD_JOB_MACHINE_VERSION` of the machine that processed it. */
  machineVersion: number;
}

export interface StoredSnapshot {
  /** `actor.getPersistedSnapshot()`, JSON-safe. */
  snapshot: unknown;
  machineVersion: number;
  /** Epoch ms of the write. */
  savedAt: number;
}

export interface ActorStore {
  /** Writes the latest snapshot and appends history entries in one step. */
  save(buildId: string, snapshot: StoredSnapshot, history: HistoryEntry[], opts?: { final?: boolean }): Promise<void>;
  load(buildId: string): Promise<StoredSnapshot | undefined>;
  history(buildId: string): Promise<HistoryEntry[]>;
  close(): Promise<void>;
}

/** Makes an event JSON-safe: errors become their message; nothing else is transformed. */
export function serializableEvent(event: { type: string }): HistoryEntry['event'] {
  return JSON.parse(
    JSON.stringify(event, (_key, value) => (value instanceof Error ? { name: value.name, message: value.message } : value)),
  ) as HistoryEntry['event'];
}
