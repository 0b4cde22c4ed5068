/**
 * Events a build-job actor takes. Time (`at`, epoch ms) and ids always arrive on the event, never
 * from a clock inside the machine, so a recorded history replays to the same states.
 */

/** Phases a worker reports with SetPhase, as Quay's DB strings. */
export type WorkerPhase = 'waiting' | 'unpacking' | 'pulling' | 'building' | 'pushing' | 'complete' | 'error';

/** SetPhase's pull metadata, empty fields left out. Not secret (no password is sent here). */
export interface PullMetadata {
  registry_url?: string;
  base_image?: string;
  base_image_tag?: string;
  pull_username?: string;
}

export type JobEvent =
  /** The scheduler claimed the build's queue item; the claim already took one retry. */
  | { type: 'job.claimed'; at: number; retriesRemaining: number }
  /** The job's liveness key expired (registration window, heartbeat TTL or the scheduling window). */
  | { type: 'job.expired'; at: number }
  /** Someone asked to cancel the build. */
  | { type: 'job.cancel'; at: number; reason?: string }
  /** RegisterBuildJob with a valid registration token. */
  | { type: 'worker.registered'; at: number }
  /** SetPhase with a valid job token. */
  | { type: 'worker.phase'; at: number; phase: WorkerPhase; pullMetadata?: PullMetadata }
  /** From the executor child: the worker was started. */
  | { type: 'executor.started'; attempt: number; executorName: string; executionId: string; at: number }
  /** From the executor child: the control plane refused or could not be reached. */
  | { type: 'executor.failed'; attempt: number; executorName: string; reason: string; failure: 'retryable' | 'capacity' | 'permanent' };
