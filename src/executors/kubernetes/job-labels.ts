import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { V1Job } from '@kubernetes/client-node';
import type { WorkerInfo } from '../build-executor.js';

/** Quay's labels (reference §5.3), kept so Quay-era dashboards and selectors still find the builders. */
export const LABEL_BUILD = 'build';
export const LABEL_TIME = 'time';
export const LABEL_MANAGER = 'manager';
export const LABEL_QUAY_SHA = 'quay-sha';
/** Ours: which installation started the Job, so counts and the orphan sweep see only our workers. */
export const LABEL_INSTALLATION = 'buildman.io/installation';
/** Ours: the attempt, so a worker can be tied back to the exact start that made it. */
export const LABEL_ATTEMPT = 'buildman.io/attempt';
/** Ours: the build id verbatim (a label value cannot hold every string; an annotation can). */
export const ANNOTATION_BUILD_ID = 'buildman.io/build-id';

const MAX_NAME = 63;
const MAX_LABEL_VALUE = 63;

/**
 * The Job's name for one attempt of one build: `<buildId>-<attempt>`, the same on every retry of
 * that start, so the API server's AlreadyExists makes the start idempotent. A build id that is not
 * a DNS-1123 label (or too long with the suffix) is replaced by a stable hash.
 */
export function jobName(buildId: string, attempt: number): string {
  const plain = `${buildId}-${attempt}`.toLowerCase();
  if (plain.length <= MAX_NAME && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(plain)) return plain;
  const digest = createHash('sha256').update(buildId).digest('hex').slice(0, 40);
  return `bm-${digest}-${attempt}`;
}

/**
 * Makes any text a valid label value (≤ 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends), as
 * Quay's values (the host name, a release sha) are not always.
 */
export function labelValue(text: string): string {
  return text
    .replace(/[^A-Za-z0-9._-]/g, '-')
    .slice(0, MAX_LABEL_VALUE)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

/** Quay's `time` label: the manager's local time to the hour, `%Y-%m-%d-%H`. */
export function hourLabel(now: Date): string {
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}-${pad(now.getHours())}`;
}

/**
 * Quay labels its Jobs with the release's git sha ("none" when unknown); ours comes from
 * `BUILDMAN_GIT_SHA` when the deployment sets it.
 */
export function releaseSha(): string {
  const sha = process.env.BUILDMAN_GIT_SHA?.trim();
  if (!sha) return 'none';
  return sha.includes(' ') ? 'HEAD' : labelValue(sha) || 'none';
}

export interface WorkerLabelOptions {
  buildId: string;
  attempt: number;
  installationId: string;
  now: Date;
}

/** The labels on the Job and on its pod template. */
export function workerLabels(opts: WorkerLabelOptions): Record<string, string> {
  return {
    [LABEL_BUILD]: labelValue(opts.buildId),
    [LABEL_TIME]: hourLabel(opts.now),
    [LABEL_MANAGER]: labelValue(hostname()) || 'unknown',
    [LABEL_QUAY_SHA]: releaseSha(),
    [LABEL_INSTALLATION]: labelValue(opts.installationId),
    [LABEL_ATTEMPT]: String(opts.attempt),
  };
}

/** Selects every Job (and pod) of one installation. */
export function installationSelector(installationId: string): string {
  return `${LABEL_INSTALLATION}=${labelValue(installationId)}`;
}

/** Finished means a `Complete` or `Failed` condition that is True (Kubernetes ≥ 1.31 puts others first). */
export function isJobFinished(job: V1Job): boolean {
  return (job.status?.conditions ?? []).some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

/** A Job we labelled, as the manager sees workers; undefined for a Job without our labels. */
export function workerFromJob(job: V1Job): WorkerInfo | undefined {
  const labels = job.metadata?.labels ?? {};
  const buildId = job.metadata?.annotations?.[ANNOTATION_BUILD_ID] ?? labels[LABEL_BUILD];
  const attempt = Number(labels[LABEL_ATTEMPT]);
  const name = job.metadata?.name;
  if (!buildId || !name || !Number.isInteger(attempt)) return undefined;
  const created = job.metadata?.creationTimestamp;
  return {
    buildId,
    attempt,
    executionId: name,
    createdAt: created ? new Date(created).getTime() : 0,
    running: !isJobFinished(job),
  };
}
