/** Quay's build phases (reference §2.1), plus `expired`: an internal error with no retries left. */
export type BuildPhase =
  | 'waiting'
  | 'build-scheduled'
  | 'unpacking'
  | 'pulling'
  | 'building'
  | 'pushing'
  | 'complete'
  | 'error'
  | 'internalerror'
  | 'cancelled'
  | 'expired';

export const TERMINAL_PHASES: ReadonlySet<BuildPhase> = new Set(['complete', 'error', 'cancelled', 'expired']);

export type BuildSource =
  /** A tar (optionally gzipped) context uploaded to the manager. */
  | { kind: 'upload'; bytes: number }
  /** An archive the worker downloads (http, https or file URL). */
  | { kind: 'url'; url: string }
  /** A git repository and commit the worker clones. */
  | { kind: 'git'; url: string; sha: string };

export interface PullCredentials {
  username: string;
  password: string;
  registry?: string;
}

/** What a client asks to build. */
export interface BuildRequest {
  /** `namespace/name`. */
  repository: string;
  /** Tags to push; default `["latest"]`. */
  tags: string[];
  /** Dockerfile path relative to the context; default `Dockerfile`. */
  dockerfilePath: string;
  /** Context sub-directory inside the source; default `/`. */
  context: string;
  source: BuildSource;
  pullCredentials?: PullCredentials;
}

/** A build as stored and shown. Never holds a token; `pullCredentials` is never logged or shown. */
export interface BuildRecord extends BuildRequest {
  id: string;
  phase: BuildPhase;
  /** The actor's state, dotted (e.g. `running.building`), for people and the status page. */
  state: string;
  createdAt: number;
  updatedAt: number;
  /** 1-based attempt number of the current or last attempt; 0 while never claimed. */
  attempt: number;
  executor?: string;
  executionId?: string;
  /** The queue item that carries this build while it waits or runs. */
  queueItemId?: string;
  /** Why the build ended in error/expired/cancelled, in words. */
  reason?: string;
}

/** A build log entry, in Quay's shape (reference §8). */
export interface LogEntry {
  message: string;
  type?: 'phase' | 'command' | 'error';
  data?: Record<string, unknown> & { datetime?: string };
}
