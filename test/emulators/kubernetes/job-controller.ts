import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { workerEnvFromIgnition } from '../../../src/executors/ignition/worker-ignition.js';
import { clone, type Job, type JobCondition, type Pod } from './kube-objects.js';
import { matchesSelector, type LabelSelector } from './label-selector.js';

/** Starts the real process a Job's pod would run, with the environment its container carries. */
export type RunWorker = (env: Record<string, string>, job: Job) => ChildProcess;

export type PropagationPolicy = 'Orphan' | 'Background' | 'Foreground';

export interface JobControllerOptions {
  runWorker?: RunWorker;
  /** SIGTERM → SIGKILL delay when a pod is deleted (terminationGracePeriodSeconds, shortened). */
  workerStopGraceMs: number;
  /** Pause before the controller replaces a failed pod (the real one backs off 10 s, doubling). */
  podRetryDelayMs: number;
}

interface Worker {
  child: ChildProcess;
  exited: Promise<void>;
}

/** The batch/v1 Job API's default backoffLimit when a Job sets none. */
const DEFAULT_BACKOFF_LIMIT = 6;
/** Pod name suffixes use the API server's alphabet (no vowels, no look-alike digits). */
const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

export function randomSuffix(n = 5): string {
  let s = '';
  for (let i = 0; i < n; i++) s += SUFFIX_ALPHABET[Math.floor(Math.random() * SUFFIX_ALPHABET.length)];
  return s;
}

/** RFC 3339 with seconds, as the API server writes timestamps. */
export function timestamp(ms = Date.now()): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

const key = (namespace: string, name: string) => `${namespace}/${name}`;

/**
 * The object store plus what the Job controller and the kubelet do with it: a Job gets a pod,
 * the pod runs a real worker process (through `runWorker`), its exit completes or fails the Job
 * (retrying up to `backoffLimit`), `activeDeadlineSeconds` fails a Job that runs too long,
 * `ttlSecondsAfterFinished` deletes a finished Job, and deleting a Job with Background or
 * Foreground propagation deletes its pods (Orphan, the batch/v1 default, leaves them running).
 */
export class JobController {
  private readonly jobs = new Map<string, Job>();
  private readonly pods = new Map<string, Pod>();
  private readonly workers = new Map<string, Worker>();
  private readonly jobTimers = new Map<string, Set<NodeJS.Timeout>>();
  private resourceVersion = 1000;
  private closed = false;

  constructor(private readonly opts: JobControllerOptions) {}

  nextResourceVersion(): string {
    return String(++this.resourceVersion);
  }

  get currentResourceVersion(): string {
    return String(this.resourceVersion);
  }

  listJobs(namespace: string | undefined, selector: LabelSelector): Job[] {
    return [...this.jobs.values()].filter((j) => (namespace === undefined || j.metadata.namespace === namespace) && matchesSelector(j.metadata.labels, selector));
  }

  getJob(namespace: string, name: string): Job | undefined {
    return this.jobs.get(key(namespace, name));
  }

  countJobs(namespace: string): number {
    return this.listJobs(namespace, []).length;
  }

  listPods(namespace: string | undefined, selector: LabelSelector): Pod[] {
    return [...this.pods.values()].filter((p) => (namespace === undefined || p.metadata.namespace === namespace) && matchesSelector(p.metadata.labels, selector));
  }

  getPod(namespace: string, name: string): Pod | undefined {
    return this.pods.get(key(namespace, name));
  }

  /** Stores a validated Job (name and namespace set) and lets the controller start its pod. */
  createJob(job: Job): Job {
    const ns = job.metadata.namespace!;
    const uid = randomUUID();
    job.metadata.uid = uid;
    job.metadata.resourceVersion = this.nextResourceVersion();
    job.metadata.generation = 1;
    job.metadata.creationTimestamp = timestamp();
    // The defaults and the selector the API server adds to every Job that does not pick its own.
    const controllerLabels = { 'batch.kubernetes.io/controller-uid': uid, 'batch.kubernetes.io/job-name': job.metadata.name!, 'controller-uid': uid, 'job-name': job.metadata.name! };
    job.spec.backoffLimit ??= DEFAULT_BACKOFF_LIMIT;
    job.spec.completions ??= 1;
    job.spec.parallelism ??= 1;
    job.spec.completionMode ??= 'NonIndexed';
    job.spec.suspend ??= false;
    job.spec.selector ??= { matchLabels: { 'batch.kubernetes.io/controller-uid': uid } };
    job.spec.template.metadata = { ...job.spec.template.metadata, labels: { ...job.spec.template.metadata?.labels, ...controllerLabels } };
    job.status = {};
    this.jobs.set(key(ns, job.metadata.name!), job);
    setImmediate(() => this.startPod(job));
    const deadline = job.spec.activeDeadlineSeconds;
    if (deadline) this.jobTimer(job, deadline * 1000, () => this.deadlineExceeded(job));
    return job;
  }

  /**
   * Removes a Job. Background and Foreground delete its pods (their workers are killed); Orphan
   * leaves them, as the API server does for batch/v1 Jobs deleted without a policy.
   */
  deleteJob(namespace: string, name: string, policy: PropagationPolicy): Job | undefined {
    const job = this.jobs.get(key(namespace, name));
    if (!job) return undefined;
    this.jobs.delete(key(namespace, name));
    for (const t of this.jobTimers.get(job.metadata.uid!) ?? []) clearTimeout(t);
    this.jobTimers.delete(job.metadata.uid!);
    for (const pod of this.podsOf(job)) {
      if (policy === 'Orphan') pod.metadata.ownerReferences = [];
      else this.deletePod(namespace, pod.metadata.name!);
    }
    job.metadata.deletionTimestamp = timestamp();
    job.metadata.resourceVersion = this.nextResourceVersion();
    return job;
  }

  /** Removes a pod at once and stops its worker: SIGTERM, then SIGKILL after the grace period. */
  deletePod(namespace: string, name: string): Pod | undefined {
    const pod = this.pods.get(key(namespace, name));
    if (!pod) return undefined;
    this.pods.delete(key(namespace, name));
    pod.metadata.deletionTimestamp = timestamp();
    this.stopWorker(pod.metadata.uid!);
    return pod;
  }

  /**
   * Test hook: finishes a Job's running pod as if its container exited (0 on success), for Jobs
   * run without a `runWorker`. Returns false when the Job has no running pod.
   */
  finishPod(namespace: string, jobName: string, succeeded: boolean): boolean {
    const job = this.jobs.get(key(namespace, jobName));
    const pod = job && this.podsOf(job).find((p) => p.status.phase === 'Running' || p.status.phase === 'Pending');
    if (!job || !pod) return false;
    this.stopWorker(pod.metadata.uid!);
    this.podExited(job, pod, succeeded ? 0 : 1);
    return true;
  }

  /** Number of worker processes still alive. */
  get liveWorkers(): number {
    return this.workers.size;
  }

  /** Resolves once every worker process has exited. */
  async workersExited(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.exited));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timers of this.jobTimers.values()) for (const t of timers) clearTimeout(t);
    this.jobTimers.clear();
    for (const uid of [...this.workers.keys()]) this.stopWorker(uid);
    await this.workersExited();
  }

  static isFinished(job: Job): boolean {
    return (job.status.conditions ?? []).some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
  }

  private podsOf(job: Job): Pod[] {
    return [...this.pods.values()].filter((p) => p.metadata.ownerReferences?.some((o) => o.uid === job.metadata.uid));
  }

  private isLive(job: Job): boolean {
    return !this.closed && this.jobs.get(key(job.metadata.namespace!, job.metadata.name!)) === job && !JobController.isFinished(job);
  }

  private startPod(job: Job): void {
    if (!this.isLive(job)) return;
    const ns = job.metadata.namespace!;
    const now = timestamp();
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: `${job.metadata.name}-${randomSuffix()}`,
        generateName: `${job.metadata.name}-`,
        namespace: ns,
        uid: randomUUID(),
        resourceVersion: this.nextResourceVersion(),
        creationTimestamp: now,
        labels: { ...job.spec.template.metadata?.labels },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name!, uid: job.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: clone(job.spec.template.spec),
      status: { phase: 'Pending', startTime: now },
    };
    this.pods.set(key(ns, pod.metadata.name!), pod);
    job.status.active = 1;
    job.status.ready = 0;
    job.status.terminating = 0;
    job.status.startTime ??= now;
    job.status.uncountedTerminatedPods ??= {};
    job.metadata.resourceVersion = this.nextResourceVersion();

    if (!this.opts.runWorker) {
      this.podRunning(job, pod);
      return;
    }
    let child: ChildProcess;
    try {
      child = this.opts.runWorker(containerEnv(job), clone(job));
    } catch (err) {
      this.podExited(job, pod, 128, `StartError: ${(err as Error).message}`);
      return;
    }
    let resolveExit!: () => void;
    const worker: Worker = { child, exited: new Promise<void>((r) => (resolveExit = r)) };
    this.workers.set(pod.metadata.uid!, worker);
    child.once('spawn', () => this.podRunning(job, pod));
    child.once('error', (err) => {
      // Also emitted for a failed kill; only a failed start means the container never ran.
      if (child.pid !== undefined) return;
      this.workers.delete(pod.metadata.uid!);
      resolveExit();
      this.podExited(job, pod, 128, `StartError: ${err.message}`);
    });
    child.once('exit', (code, signal) => {
      this.workers.delete(pod.metadata.uid!);
      resolveExit();
      this.podExited(job, pod, code ?? (signal ? 137 : 1));
    });
  }

  private podRunning(job: Job, pod: Pod): void {
    if (!this.pods.has(key(pod.metadata.namespace!, pod.metadata.name!)) || pod.status.phase !== 'Pending') return;
    pod.status.phase = 'Running';
    pod.status.containerStatuses = pod.spec.containers.map((c) => ({ name: c.name, ready: true, restartCount: 0, image: c.image, state: { running: { startedAt: timestamp() } } }));
    pod.metadata.resourceVersion = this.nextResourceVersion();
    if (this.isLive(job)) {
      job.status.ready = 1;
      job.metadata.resourceVersion = this.nextResourceVersion();
    }
  }

  /** The container exited: the pod is done, and the Job completes, fails, or gets a new pod. */
  private podExited(job: Job, pod: Pod, exitCode: number, reason?: string): void {
    if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') return;
    const podKnown = this.pods.has(key(pod.metadata.namespace!, pod.metadata.name!));
    if (podKnown) {
      pod.status.phase = exitCode === 0 ? 'Succeeded' : 'Failed';
      if (reason) pod.status.reason = reason;
      pod.status.containerStatuses = pod.spec.containers.map((c) => ({ name: c.name, ready: false, restartCount: 0, image: c.image, state: { terminated: { exitCode, finishedAt: timestamp() } } }));
      pod.metadata.resourceVersion = this.nextResourceVersion();
    }
    // A deleted pod does not count: the Job was deleted or is being torn down.
    if (!podKnown || !this.isLive(job)) return;
    job.status.active = 0;
    job.status.ready = 0;
    if (exitCode === 0) {
      job.status.succeeded = (job.status.succeeded ?? 0) + 1;
      job.status.completionTime = timestamp();
      this.finish(job, 'Complete', 'CompletionsReached', 'Reached expected number of succeeded pods');
      return;
    }
    job.status.failed = (job.status.failed ?? 0) + 1;
    job.metadata.resourceVersion = this.nextResourceVersion();
    if (job.status.failed > (job.spec.backoffLimit ?? DEFAULT_BACKOFF_LIMIT)) {
      this.finish(job, 'Failed', 'BackoffLimitExceeded', 'Job has reached the specified backoff limit');
      return;
    }
    this.jobTimer(job, this.opts.podRetryDelayMs, () => this.startPod(job));
  }

  private deadlineExceeded(job: Job): void {
    if (!this.isLive(job)) return;
    for (const pod of this.podsOf(job)) {
      if (pod.status.phase === 'Running' || pod.status.phase === 'Pending') {
        this.deletePod(pod.metadata.namespace!, pod.metadata.name!);
        job.status.failed = (job.status.failed ?? 0) + 1;
      }
    }
    job.status.active = 0;
    job.status.ready = 0;
    this.finish(job, 'Failed', 'DeadlineExceeded', 'Job was active longer than specified deadline');
  }

  /** Kubernetes ≥ 1.31 writes the target condition first, then the final one. */
  private finish(job: Job, type: 'Complete' | 'Failed', reason: string, message: string): void {
    const now = timestamp();
    const condition = (t: string): JobCondition => ({ type: t, status: 'True', reason, message, lastProbeTime: now, lastTransitionTime: now });
    job.status.conditions = [condition(type === 'Complete' ? 'SuccessCriteriaMet' : 'FailureTarget'), condition(type)];
    job.metadata.resourceVersion = this.nextResourceVersion();
    const ttl = job.spec.ttlSecondsAfterFinished;
    if (ttl !== undefined) this.jobTimer(job, ttl * 1000, () => this.deleteJob(job.metadata.namespace!, job.metadata.name!, 'Background'));
  }

  private jobTimer(job: Job, ms: number, fn: () => void): void {
    const uid = job.metadata.uid!;
    const timers = this.jobTimers.get(uid) ?? new Set<NodeJS.Timeout>();
    this.jobTimers.set(uid, timers);
    const t = setTimeout(() => {
      timers.delete(t);
      fn();
    }, ms);
    t.unref();
    timers.add(t);
  }

  private stopWorker(podUid: string): void {
    const worker = this.workers.get(podUid);
    if (!worker) return;
    const { child } = worker;
    child.kill('SIGTERM');
    const force = setTimeout(() => child.kill('SIGKILL'), this.opts.workerStopGraceMs);
    force.unref();
    void worker.exited.then(() => clearTimeout(force));
  }
}

/**
 * What the worker process sees: the container's literal env; for the VM executor (a USERDATA
 * variable holding ignition), the worker's env file inside that ignition, as the VM would run it.
 */
export function containerEnv(job: Job): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of job.spec.template.spec.containers[0]?.env ?? []) if (typeof e.value === 'string') env[e.name] = e.value;
  return env.USERDATA ? workerEnvFromIgnition(env.USERDATA) : env;
}
