import type { ExecutorConfig } from '../config/config-types.js';

/** What an executor needs to start one worker for one attempt of one build. */
export interface StartRequest {
  buildId: string;
  /** 1-based attempt number; with buildId it names the worker deterministically, so a retried start is idempotent. */
  attempt: number;
  /** The registration token (`build_job_registration`). A secret: never log it. */
  token: string;
}

/** Identifies a worker to stop. `executionId` is absent when the start failed part-way. */
export interface StopRequest {
  buildId: string;
  attempt: number;
  executionId?: string;
}

/**
 * A control plane that runs build workers (reference §5). Errors thrown are `BuildmanError`s
 * whose `kind` says whether falling back or retrying could help.
 */
export interface BuildExecutor {
  readonly name: string;
  readonly kind: ExecutorConfig['EXECUTOR'];
  readonly config: ExecutorConfig;
  /** Starts a worker and returns its execution id. Calling twice for the same buildId+attempt starts one worker. */
  start(req: StartRequest): Promise<string>;
  /** Stops the worker. Harmless for an unknown or already-gone worker. No-op when `DEBUG` keeps workers. */
  stop(req: StopRequest): Promise<void>;
  /** Workers of this installation that are still running. */
  runningCount(): Promise<number>;
  /** Every worker this installation started that the control plane still has (for the orphan sweep). */
  listWorkers(): Promise<WorkerInfo[]>;
  /** Releases clients and kills nothing that should outlive the manager... except local processes. */
  close(): Promise<void>;
}

/** A worker as its control plane reports it, tied back to its build by labels or tags. */
export interface WorkerInfo {
  buildId: string;
  attempt: number;
  executionId: string;
  /** Epoch ms the control plane says it was created. */
  createdAt: number;
  /** Still running (false: finished but not yet cleaned up). */
  running: boolean;
}

/** Context every executor gets from the manager. */
export interface ExecutorContext {
  /** `SERVER_HOSTNAME`: the registry workers push to. */
  registryHostname?: string;
  /** The manager's hostname (JWT audience). */
  managerHostname: string;
  /** The gRPC address workers dial, host:port. */
  grpcAddress: string;
  /**
   * Names this installation (derived from ORCHESTRATOR_PREFIX): every worker is labelled or tagged
   * with it, so counts and the orphan sweep only ever see this installation's workers.
   */
  installationId: string;
  /** Data folder (the local worker writes OCI archives under it). */
  dataDir: string;
  /** Log sink for worker output and executor events. */
  log: { info(obj: object, msg?: string): void; warn(obj: object, msg?: string): void; error(obj: object, msg?: string): void };
}
