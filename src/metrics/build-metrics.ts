import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ExecutorConfig } from '../config/config-types.js';

/** Final statuses Quay labels `quay_build_duration_seconds` with. */
export type BuildJobStatus = 'complete' | 'error' | 'expired' | 'incomplete' | 'cancelled';

/** Quay's `executor` label of `quay_build_start_duration_seconds`: the executor's class, not its NAME. */
export type StartDurationLabel = 'ec2' | 'k8s' | 'popen';

/**
 * Quay's histograms use prometheus_client's default buckets, which stop at 10 s; builds and
 * machine boots take minutes, so our buckets reach further. Names and labels are Quay's exactly.
 */
const SHORT_BUCKETS = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
const BUILD_BUCKETS = [1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 10800];

export interface BuildMetricsOptions {
  /** Also collect Node's process metrics (CPU, memory, event loop) into the registry. @defaultValue false */
  defaultMetrics?: boolean;
}

/**
 * The manager's Prometheus metrics (reference §7), in a registry of their own so tests and
 * several managers in one process do not collide. Quay only pushes these to a Pushgateway; we
 * serve `registry.metrics()` on `/metrics`.
 */
export class BuildMetrics {
  readonly registry = new Registry();

  /** Executor skipped because the build's retries fell below its MINIMUM_RETRY_THRESHOLD. */
  readonly fallback = new Counter({
    name: 'quay_build_fallback_total',
    help: 'Executors skipped for a build by their retry threshold',
    labelNames: ['executor'] as const,
    registers: [this.registry],
  });

  /** RegisterBuildJob time minus the time the worker was started. */
  readonly ackDuration = new Histogram({
    name: 'quay_build_ack_duration_seconds',
    help: 'Seconds from starting a worker until it registered',
    labelNames: ['executor'] as const,
    buckets: SHORT_BUCKETS,
    registers: [this.registry],
  });

  /** After each schedule attempt: now minus the build's creation. */
  readonly queueDuration = new Histogram({
    name: 'quay_build_queue_duration_seconds',
    help: 'Seconds from a build being queued until a schedule attempt',
    labelNames: ['schedule_success'] as const,
    buckets: BUILD_BUCKETS,
    registers: [this.registry],
  });

  readonly buildDuration = new Histogram({
    name: 'quay_build_duration_seconds',
    help: 'Seconds a build job ran, by executor and final status',
    labelNames: ['executor', 'job_status'] as const,
    buckets: BUILD_BUCKETS,
    registers: [this.registry],
  });

  /** Quay's `quay_build_jobs` counter, which Python's client exposes with the `_total` suffix. */
  readonly jobs = new Counter({
    name: 'quay_build_jobs_total',
    help: 'Build jobs finished: success on completion, failure on a failed schedule or a final error',
    labelNames: ['success'] as const,
    registers: [this.registry],
  });

  readonly startDuration = new Histogram({
    name: 'quay_build_start_duration_seconds',
    help: 'Seconds an executor took to start a worker',
    labelNames: ['executor'] as const,
    buckets: SHORT_BUCKETS,
    registers: [this.registry],
  });

  readonly startFailures = new Counter({
    name: 'buildman_executor_start_failures_total',
    help: 'Worker starts that failed, by executor NAME and error code',
    labelNames: ['executor', 'reason'] as const,
    registers: [this.registry],
  });

  readonly orphansRemoved = new Counter({
    name: 'buildman_orphans_removed_total',
    help: 'Workers the orphan sweep stopped because no live build owned them',
    labelNames: ['executor'] as const,
    registers: [this.registry],
  });

  readonly buildExpiries = new Counter({
    name: 'buildman_build_expiries_total',
    help: 'Build attempts that expired (no registration or heartbeat in time)',
    registers: [this.registry],
  });

  readonly buildCancels = new Counter({
    name: 'buildman_build_cancels_total',
    help: 'Builds cancelled',
    registers: [this.registry],
  });

  /** What operators of the peers ask for: end-to-end latency from the user's point of view. */
  readonly enqueueToRegistered = new Histogram({
    name: 'buildman_build_enqueue_to_registered_seconds',
    help: 'Seconds from a build being queued until its worker registered',
    buckets: SHORT_BUCKETS,
    registers: [this.registry],
  });

  readonly enqueueToEnd = new Histogram({
    name: 'buildman_build_enqueue_to_end_seconds',
    help: 'Seconds from a build being queued until it ended, by outcome',
    labelNames: ['outcome'] as const,
    buckets: BUILD_BUCKETS,
    registers: [this.registry],
  });

  readonly runningActors = new Gauge({
    name: 'buildman_running_actors',
    help: 'Build actors live in this manager instance',
    registers: [this.registry],
  });

  constructor(options: BuildMetricsOptions = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  recordFallback(executor: string): void {
    this.fallback.inc({ executor });
  }

  recordAck(executor: string, seconds: number): void {
    this.ackDuration.observe({ executor }, seconds);
  }

  /** Quay labels this with Python's bool spelling, `True`/`False`. */
  recordQueueDuration(scheduleSuccess: boolean, seconds: number): void {
    this.queueDuration.observe({ schedule_success: scheduleSuccess ? 'True' : 'False' }, seconds);
  }

  recordBuildDuration(executor: string, jobStatus: BuildJobStatus, seconds: number): void {
    this.buildDuration.observe({ executor, job_status: jobStatus }, seconds);
  }

  recordJob(success: boolean): void {
    this.jobs.inc({ success: success ? 'true' : 'false' });
  }

  /** Labelled by executor kind the way Quay does (both Kubernetes kinds are `k8s`). */
  recordStartDuration(kind: ExecutorConfig['EXECUTOR'], seconds: number): void {
    this.startDuration.observe({ executor: startDurationLabel(kind) }, seconds);
  }

  recordStartFailure(executor: string, reason: string): void {
    this.startFailures.inc({ executor, reason });
  }

  recordOrphansRemoved(executor: string, count: number): void {
    if (count > 0) this.orphansRemoved.inc({ executor }, count);
  }

  recordExpiry(): void {
    this.buildExpiries.inc();
  }

  recordCancel(): void {
    this.buildCancels.inc();
  }

  recordEnqueueToRegistered(seconds: number): void {
    this.enqueueToRegistered.observe(seconds);
  }

  recordEnqueueToEnd(outcome: string, seconds: number): void {
    this.enqueueToEnd.observe({ outcome }, seconds);
  }

  setRunningActors(count: number): void {
    this.runningActors.set(count);
  }

  /** The text exposition format, for `/metrics`. */
  metrics(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

export function startDurationLabel(kind: ExecutorConfig['EXECUTOR']): StartDurationLabel {
  switch (kind) {
    case 'ec2':
      return 'ec2';
    case 'kubernetes':
    case 'kubernetesPodman':
      return 'k8s';
    case 'popen':
      return 'popen';
  }
}
