/** The JSON shapes the emulator stores: only the fields it reads are typed; the rest is kept as sent. */

export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: Array<{ apiVersion: string; kind: string; name: string; uid: string; controller?: boolean; blockOwnerDeletion?: boolean }>;
  finalizers?: string[];
  [field: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: unknown;
}

export interface Container {
  name: string;
  image?: string;
  env?: EnvVar[];
  [field: string]: unknown;
}

export interface PodSpec {
  containers: Container[];
  restartPolicy?: string;
  [field: string]: unknown;
}

export interface JobCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastProbeTime?: string;
  lastTransitionTime?: string;
}

export interface JobStatus {
  active?: number;
  succeeded?: number;
  failed?: number;
  ready?: number;
  terminating?: number;
  startTime?: string;
  completionTime?: string;
  conditions?: JobCondition[];
  uncountedTerminatedPods?: Record<string, unknown>;
}

export interface Job {
  apiVersion: 'batch/v1';
  kind: 'Job';
  metadata: ObjectMeta;
  spec: {
    template: { metadata?: ObjectMeta; spec: PodSpec };
    backoffLimit?: number;
    activeDeadlineSeconds?: number;
    ttlSecondsAfterFinished?: number;
    selector?: { matchLabels?: Record<string, string> };
    [field: string]: unknown;
  };
  status: JobStatus;
}

export interface Pod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: ObjectMeta;
  spec: PodSpec;
  status: {
    phase: 'Pending' | 'Running' | 'Succeeded' | 'Failed';
    startTime?: string;
    reason?: string;
    message?: string;
    containerStatuses?: Array<{ name: string; ready: boolean; state: Record<string, unknown>; restartCount: number; image?: string }>;
  };
}

export function clone<T>(value: T): T {
  return structuredClone(value);
}
