import type { Readable } from 'node:stream';
import type { BuildRecord, BuildRequest, LogEntry } from '../builds/build-record.js';
import type { HistoryEntry } from '../persistence/actor-store.js';

/** A build as the API shows it: the record without credentials. */
export type BuildView = Omit<BuildRecord, 'pullCredentials'> & { final: boolean };

/** What the HTTP API and the CLI need from the manager. Errors are `RequestError`s (400/404/409/413). */
export interface BuildService {
  /** Queues a build. For an upload source, `context` is the tar(.gz) stream. */
  submit(req: BuildRequest, context?: Readable): Promise<BuildView>;
  get(id: string): Promise<BuildView>;
  list(opts?: { limit?: number }): Promise<BuildView[]>;
  logs(id: string, start: number): Promise<{ start: number; total: number; logs: LogEntry[] }>;
  /**
   * Streams entries from `start` on: what exists, then each new one. `onEnd` is called once the
   * build is final and every entry has been delivered. Returns a stop function.
   */
  followLogs(id: string, start: number, onEntry: (entry: LogEntry, index: number) => void, onEnd: (build: BuildView) => void): Promise<() => void>;
  /** Cancels a build. 409 when it can no longer be cancelled (pushing or final). */
  cancel(id: string): Promise<BuildView>;
  /** The uploaded context, for the worker holding this build's job token. Throws RequestError 401/404. */
  openContext(id: string, jobToken: string): Promise<Readable>;
  /** Every event the build's actor processed, with times and states (oldest first). */
  history(id: string): Promise<HistoryEntry[]>;
  /** Prometheus text exposition of the manager's metrics. */
  metrics(): Promise<{ contentType: string; body: string }>;
  health(): Promise<{ ok: boolean; details: Record<string, unknown> }>;
}
