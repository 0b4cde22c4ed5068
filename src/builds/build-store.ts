import type { Readable } from 'node:stream';
import type { BuildRecord, LogEntry } from './build-record.js';

/**
 * Build records, their logs and uploaded contexts. The in-memory store backs the embedded
 * default; the Redis store keeps Quay's `builds/<uuid>/logs` layout.
 */
export interface BuildStore {
  create(record: BuildRecord): Promise<void>;
  get(id: string): Promise<BuildRecord | undefined>;
  /** Newest first. */
  list(opts?: { limit?: number }): Promise<BuildRecord[]>;
  update(id: string, patch: Partial<BuildRecord>): Promise<BuildRecord | undefined>;

  /** Appends entries; returns the index of the last one (length − 1). */
  appendLogs(id: string, entries: LogEntry[]): Promise<number>;
  /** Entries from `start` to the end, and the total count. */
  readLogs(id: string, start: number): Promise<{ total: number; logs: LogEntry[] }>;
  /** Calls `listener` with each entry appended after subscribing. Returns an unsubscribe. */
  watchLogs(id: string, listener: (entry: LogEntry, index: number) => void): () => void;

  /** Stores an uploaded context archive, enforcing `maxBytes` (throws RequestError 413 past it). */
  saveContext(id: string, data: Readable, maxBytes: number): Promise<number>;
  openContext(id: string): Promise<Readable | undefined>;
  deleteContext(id: string): Promise<void>;
  close(): Promise<void>;
}
