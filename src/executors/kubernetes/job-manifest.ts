import { readFileSync } from 'node:fs';
import type { V1Container, V1EnvVar, V1Job, V1PodSpec, V1ResourceRequirements } from '@kubernetes/client-node';
import type { KubernetesExecutorConfig } from '../../config/config-types.js';
import { PermanentError } from '../../errors/buildman-error.js';
import { workerIgnitionJson } from '../ignition/worker-ignition.js';
import { ANNOTATION_BUILD_ID, jobName, workerLabels } from './job-labels.js';

/** Where the builder image expects its CA bundle (written from CA_CERT by its entrypoint). */
export const CONTAINER_CA_PATH = '/certs/cacert.crt';
/** The podman socket of the builder image's rootless user (uid 1000). */
export const PODMAN_DOCKER_HOST = 'unix:///tmp/podman-run-1000/podman/podman.sock';
/** Where Kubernetes mounts the service-account token; the basic distribution hides it. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Quay's retry limit: a second pod, then the Job fails (a third would meet an expired registration token). */
export const BACKOFF_LIMIT = 1;

export interface WorkerJobOptions {
  config: KubernetesExecutorConfig;
  buildId: string;
  attempt: number;
  /** The registration token: it goes into the pod's environment (as Quay does). Never log the Job. */
  token: string;
  installationId: string;
  /** The gRPC address the worker dials (SERVER). */
  grpcAddress: string;
  registryHostname?: string;
  now: Date;
}

/**
 * The batch/v1 Job that runs one worker (reference §5.3, §5.4): Quay's skeleton, labels,
 * resources and distribution extras, with a deterministic name instead of `generateName`.
 */
export function workerJob(opts: WorkerJobOptions): V1Job {
  const { config } = opts;
  const labels = workerLabels(opts);
  const spec: V1Job['spec'] = {
    activeDeadlineSeconds: config.MAXIMUM_JOB_TIME,
    backoffLimit: BACKOFF_LIMIT,
    template: { metadata: { labels: { ...labels } }, spec: podSpec(opts) },
  };
  // DEBUG keeps the finished Job and its pod for someone to inspect.
  if (!config.DEBUG) spec!.ttlSecondsAfterFinished = config.RETENTION_AFTER_FINISHED;
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      name: jobName(opts.buildId, opts.attempt),
      namespace: config.BUILDER_NAMESPACE,
      labels,
      annotations: { [ANNOTATION_BUILD_ID]: opts.buildId },
    },
    spec,
  };
}

function podSpec(opts: WorkerJobOptions): V1PodSpec {
  const { config } = opts;
  const container = config.EXECUTOR === 'kubernetes' ? vmContainer(opts) : podmanContainer(opts);
  container.resources = resources(config);
  const pod: V1PodSpec = {
    restartPolicy: 'Never',
    dnsPolicy: config.DNS_POLICY,
    containers: [container],
  };
  if (config.IMAGE_PULL_SECRET_NAME) pod.imagePullSecrets = [{ name: config.IMAGE_PULL_SECRET_NAME }];
  if (config.KUBERNETES_DISTRIBUTION === 'openshift') {
    pod.automountServiceAccountToken = false;
    pod.serviceAccount = config.SERVICE_ACCOUNT_NAME;
    pod.serviceAccountName = config.SERVICE_ACCOUNT_NAME;
    pod.enableServiceLinks = false;
    if (config.NODE_SELECTOR_LABEL_VALUE.trim()) pod.nodeSelector = { [config.NODE_SELECTOR_LABEL_KEY]: config.NODE_SELECTOR_LABEL_VALUE };
  } else {
    // An empty in-memory volume over the token mount keeps the namespace's default token from the build.
    pod.volumes = [{ name: 'secrets-mask', emptyDir: { medium: 'Memory' } }];
    container.volumeMounts = [{ name: 'secrets-mask', mountPath: SERVICE_ACCOUNT_DIR }];
  }
  return pod;
}

/** `kubernetes`: a privileged QEMU container that boots Fedora CoreOS from the ignition in USERDATA. */
function vmContainer(opts: WorkerJobOptions): V1Container {
  const { config } = opts;
  const userData = workerIgnitionJson({
    buildId: opts.buildId,
    token: opts.token,
    server: opts.grpcAddress,
    registryHostname: opts.registryHostname,
    config,
  });
  return {
    name: 'builder',
    image: config.BUILDER_VM_CONTAINER_IMAGE,
    imagePullPolicy: config.IMAGE_PULL_POLICY,
    securityContext: { privileged: true },
    env: [
      { name: 'USERDATA', value: userData },
      { name: 'VM_MEMORY', value: config.VM_MEMORY_LIMIT },
      { name: 'VM_VOLUME_SIZE', value: config.VOLUME_SIZE },
    ],
  };
}

/** `kubernetesPodman`: the builder image itself, unprivileged, building with rootless podman. */
function podmanContainer(opts: WorkerJobOptions): V1Container {
  const { config } = opts;
  const env: V1EnvVar[] = [
    { name: 'TOKEN', value: opts.token },
    { name: 'BUILD_UUID', value: opts.buildId },
    { name: 'SERVER', value: opts.grpcAddress },
    { name: 'REGISTRY_HOSTNAME', value: opts.registryHostname ?? '' },
    { name: 'CONTAINER_RUNTIME', value: 'podman' },
    // Quay's spelling, which released builder images may read; the correct name too, for buildah.
    { name: 'BULDAH_ISOLATION', value: 'chroot' },
    { name: 'BUILDAH_ISOLATION', value: 'chroot' },
    { name: 'CA_CERT', value: caBundle(config) },
    { name: 'GIT_SSL_CAINFO', value: CONTAINER_CA_PATH },
    { name: 'TLS_CERT_PATH', value: CONTAINER_CA_PATH },
    { name: 'SSL_CERT_FILE', value: CONTAINER_CA_PATH },
    { name: 'DEBUG', value: config.DEBUG ? 'true' : 'false' },
    { name: 'HTTP_PROXY', value: config.HTTP_PROXY ?? '' },
    { name: 'HTTPS_PROXY', value: config.HTTPS_PROXY ?? '' },
    { name: 'NO_PROXY', value: config.NO_PROXY ?? '' },
    { name: 'DOCKER_HOST', value: PODMAN_DOCKER_HOST },
    { name: 'EXECUTOR', value: config.EXECUTOR },
  ];
  return {
    name: 'builder',
    image: config.BUILDER_CONTAINER_IMAGE,
    imagePullPolicy: config.IMAGE_PULL_POLICY,
    securityContext: { privileged: false },
    env,
  };
}

/** Memory request always; on OpenShift also the cpu request and both limits (its quotas demand them). */
function resources(config: KubernetesExecutorConfig): V1ResourceRequirements {
  if (config.KUBERNETES_DISTRIBUTION !== 'openshift') return { requests: { memory: config.CONTAINER_MEMORY_REQUEST } };
  return {
    requests: { memory: config.CONTAINER_MEMORY_REQUEST, cpu: config.CONTAINER_CPU_REQUEST },
    limits: { memory: config.CONTAINER_MEMORY_LIMITS, cpu: config.CONTAINER_CPU_LIMITS },
  };
}

/** CA_CERT plus every EXTRA_CA_CERTS file, one PEM after another. */
function caBundle(config: KubernetesExecutorConfig): string {
  const parts = config.CA_CERT ? [config.CA_CERT] : [];
  for (const path of config.EXTRA_CA_CERTS ?? []) {
    try {
      parts.push(readFileSync(path, 'utf8'));
    } catch (err) {
      throw new PermanentError(
        `executor ${config.NAME}: cannot read EXTRA_CA_CERTS file ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); fix the path or remove it from EXTRA_CA_CERTS`,
        'INVALID_CONFIG',
        err,
      );
    }
  }
  return parts.join('\n');
}
