import { z } from 'zod';
import { DEFAULT_WORKER_BINARY } from '../util/package-root.js';
import type { ExecutorConfig } from './config-types.js';
import {
  decimal,
  expected,
  flag,
  fraction,
  httpUrl,
  oneOf,
  show,
  text,
  textList,
  wholeNumber,
  wholeNumberOrDigits,
} from './field-schemas.js';

/** The executor kinds of reference §5, in Quay's spelling. */
export const EXECUTOR_KINDS = ['popen', 'ec2', 'kubernetes', 'kubernetesPodman'] as const;
export type ExecutorKind = (typeof EXECUTOR_KINDS)[number];

/** `NAME` when none is given: Quay's class names, so metrics and logs match a Quay install. */
export const DEFAULT_EXECUTOR_NAMES: Readonly<Record<ExecutorKind, string>> = {
  popen: 'PopenExecutor',
  ec2: 'EC2Executor',
  kubernetes: 'KubernetesExecutor',
  kubernetesPodman: 'KubernetesPodmanExecutor',
};

/** Seconds a started worker has to register when the executor sets no SETUP_TIME (Quay's EPHEMERAL_SETUP_TIMEOUT). */
export const DEFAULT_SETUP_TIME = 500;

const kindList = EXECUTOR_KINDS.join(', ');

/** The `EXECUTOR` key: which control plane starts the worker. */
export const executorKindSchema = z.enum(EXECUTOR_KINDS, {
  error: (issue) =>
    issue.input === undefined
      ? `required: the executor kind, one of ${kindList}`
      : `unknown executor kind ${show(issue.input)}: expected one of ${kindList}`,
});

/** Checked first on each executor, so the kind decides which schema checks the rest. */
export const executorHeadSchema = z.looseObject(
  { EXECUTOR: executorKindSchema },
  { error: expected(`a mapping of executor keys, starting with EXECUTOR (one of ${kindList})`) },
);

/** Keys every kind accepts (reference §5.1). Some only matter to some kinds; all are known keys. */
function commonFields<K extends ExecutorKind>(kind: K) {
  return {
    EXECUTOR: z.literal(kind),
    NAME: text('a name', { nonEmpty: true }).default(DEFAULT_EXECUTOR_NAMES[kind]),
    SETUP_TIME: wholeNumber(1, undefined, 'seconds').default(DEFAULT_SETUP_TIME),
    MINIMUM_RETRY_THRESHOLD: wholeNumber(0).default(0),
    NAMESPACE_WHITELIST: textList('a list of namespace names').optional(),
    STAGED_ROLLOUT: fraction().optional(),
    DEBUG: flag().default(false),
    HTTP_PROXY: text('a proxy URL').optional(),
    HTTPS_PROXY: text('a proxy URL').optional(),
    NO_PROXY: text('a comma-separated list of hosts').optional(),
    QUAY_USERNAME: text('a user name').optional(),
    QUAY_PASSWORD: text('a password').optional(),
    WORKER_IMAGE: text('an image name').optional(),
    WORKER_TAG: text('an image tag').optional(),
    // Quay writes it into the machine's unit files as text, so quoted digits work there too.
    MAX_LIFETIME_S: wholeNumberOrDigits(1, undefined, 'seconds').optional(),
    SSH_AUTHORIZED_KEYS: textList('a list of SSH public keys').optional(),
    CA_CERT: text('a PEM certificate (the text, not a path)').optional(),
  };
}

/** The executors that boot a machine from an ignition config and run the worker image on it. */
function ignitionFields(kind: 'an ec2' | 'a kubernetes') {
  return {
    WORKER_IMAGE: text('an image name').default('quay.io/coreos/registry-build-worker'),
    WORKER_TAG: text('an image tag', {
      nonEmpty: true,
      missing: `required for ${kind} executor: the tag of WORKER_IMAGE to run (e.g. latest)`,
    }),
    MAX_LIFETIME_S: wholeNumberOrDigits(1, undefined, 'seconds').default(10800),
    SSH_AUTHORIZED_KEYS: textList('a list of SSH public keys').default([]),
    CONTAINER_RUNTIME: oneOf(['docker', 'podman']).default('docker'),
  };
}

/**
 * A Kubernetes resource quantity. Quay puts the value into the pod spec as it is, and the API
 * server takes a bare number there, so `CONTAINER_CPU_LIMITS: 2` keeps working.
 */
function quantity(example: string) {
  return z.preprocess((v) => (typeof v === 'number' ? String(v) : v), text(`a resource quantity such as ${example}`, { nonEmpty: true }));
}

/** Keys shared by both Kubernetes kinds (reference §5.3). */
const kubernetesFields = {
  BUILDER_NAMESPACE: text('a namespace name', { nonEmpty: true }).default('builder'),
  BUILDER_VM_CONTAINER_IMAGE: text('an image reference').default('quay.io/quay/quay-builder-qemu-fedoracoreos:stable'),
  BUILDER_CONTAINER_IMAGE: text('an image reference').default('quay.io/projectquay/quay-builder:latest'),
  K8S_API_SERVER: text('the API server as host:port', { nonEmpty: true }).default('localhost:8080'),
  K8S_API_TLS_CERT: text('a client certificate file path').optional(),
  K8S_API_TLS_KEY: text('a client key file path').optional(),
  K8S_API_TLS_CA: text('a CA certificate file path').optional(),
  SERVICE_ACCOUNT_TOKEN: text('a bearer token').optional(),
  /** Quay documents this key but never reads it; we honour it. */
  VERIFY_TLS: flag().default(true),
  K8S_API_TIMEOUT: decimal(1, 'seconds').default(20),
  KUBERNETES_DISTRIBUTION: oneOf(['basic', 'openshift']).default('basic'),
  CONTAINER_MEMORY_REQUEST: quantity('3968Mi').default('3968Mi'),
  CONTAINER_MEMORY_LIMITS: quantity('5120Mi').default('5120Mi'),
  CONTAINER_CPU_LIMITS: quantity('1000m').default('1000m'),
  CONTAINER_CPU_REQUEST: quantity('500m').default('500m'),
  VM_MEMORY_LIMIT: text('a memory size such as 4G', { nonEmpty: true }).default('4G'),
  VOLUME_SIZE: text('a disk size such as 32G', { nonEmpty: true }).default('32G'),
  IMAGE_PULL_POLICY: oneOf(['Always', 'IfNotPresent', 'Never']).default('Always'),
  IMAGE_PULL_SECRET_NAME: text('a secret name').default('builder'),
  SERVICE_ACCOUNT_NAME: text('a service account name').default('quay-builder-sa'),
  NODE_SELECTOR_LABEL_KEY: text('a label key').default('beta.kubernetes.io/instance-type'),
  NODE_SELECTOR_LABEL_VALUE: text('a label value').default(''),
  DNS_POLICY: oneOf(['ClusterFirst', 'ClusterFirstWithHostNet', 'Default', 'None']).default('Default'),
  MAXIMUM_JOB_TIME: wholeNumber(1, undefined, 'seconds').default(7200),
  RETENTION_AFTER_FINISHED: wholeNumber(0, undefined, 'seconds').default(120),
  EXTRA_CA_CERTS: textList('a list of certificate file names').optional(),
};

/** Client-certificate auth needs both halves; Quay silently falls back to plain http with one. */
function tlsPairRefinement(
  v: { K8S_API_TLS_CERT?: unknown; K8S_API_TLS_KEY?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (v.K8S_API_TLS_CERT !== undefined && v.K8S_API_TLS_KEY === undefined)
    ctx.addIssue({ code: 'custom', path: ['K8S_API_TLS_KEY'], message: 'required when K8S_API_TLS_CERT is set: the client key file for that certificate' });
  if (v.K8S_API_TLS_KEY !== undefined && v.K8S_API_TLS_CERT === undefined)
    ctx.addIssue({ code: 'custom', path: ['K8S_API_TLS_CERT'], message: 'required when K8S_API_TLS_KEY is set: the client certificate file for that key' });
}

// Cross-key rules run even when another key is wrong (`when`), so one pass reports every problem.
const always = { when: () => true };

/** `popen`: a local child process (reference §5.5). */
export const popenExecutorSchema = z.object({
  ...commonFields('popen'),
  /** Quay's default /usr/local/bin/quay-builder is not installed here; ours is the reference worker. */
  BUILDER_BINARY_LOCATION: text('a path to the worker executable', { nonEmpty: true }).default(DEFAULT_WORKER_BINARY),
  /** buildah, not Quay's docker: the machines buildman targets build with buildah and run no docker daemon. */
  CONTAINER_RUNTIME: oneOf(['docker', 'podman', 'buildah']).default('buildah'),
  BUILDAH_ISOLATION: oneOf(['chroot', 'oci', 'rootless']).default('chroot'),
  INSECURE: flag().default(false),
});

/** `ec2`: an EC2 instance booted from Fedora CoreOS (reference §5.2). */
export const ec2ExecutorSchema = z
  .object({
    ...commonFields('ec2'),
    ...ignitionFields('an ec2'),
    EC2_REGION: text('an AWS region name', { nonEmpty: true, missing: 'required for an ec2 executor (e.g. us-east-1)' }),
    AWS_ACCESS_KEY: text('an access key id').optional(),
    AWS_SECRET_KEY: text('a secret access key').optional(),
    COREOS_AMI: text('an AMI id such as ami-0123456789abcdef0').optional(),
    COREOS_CHANNEL: oneOf(['stable', 'testing', 'next']).default('stable'),
    EC2_INSTANCE_TYPE: text('an instance type', { nonEmpty: true, missing: 'required for an ec2 executor (e.g. t3.large)' }),
    EC2_KEY_NAME: text('a key pair name').optional(),
    EC2_VPC_SUBNET_ID: text('a subnet id such as subnet-0123abcd').optional(),
    EC2_SECURITY_GROUP_IDS: textList('a list of security group ids').optional(),
    BLOCK_DEVICE_SIZE: wholeNumber(1, undefined, 'GiB').default(48),
    EC2_ENDPOINT: httpUrl().optional(),
  })
  .superRefine((v, ctx) => {
    const groups = v.EC2_SECURITY_GROUP_IDS;
    if (v.EC2_VPC_SUBNET_ID && (groups === undefined || (Array.isArray(groups) && groups.length === 0)))
      ctx.addIssue({
        code: 'custom',
        path: ['EC2_SECURITY_GROUP_IDS'],
        message: 'required when EC2_VPC_SUBNET_ID is set: a list of security group ids for the builder (e.g. [sg-0123abcd])',
      });
  }, always);

/** `kubernetes`: a Job whose pod runs a QEMU VM with the worker inside (reference §5.3). */
export const kubernetesExecutorSchema = z
  .object({ ...commonFields('kubernetes'), ...kubernetesFields, ...ignitionFields('a kubernetes') })
  .superRefine(tlsPairRefinement, always);

/** `kubernetesPodman`: a Job whose pod runs the worker image directly (reference §5.4). */
export const kubernetesPodmanExecutorSchema = z
  .object({
    ...commonFields('kubernetesPodman'),
    ...kubernetesFields,
    /** Quay always runs podman here and ignores this key. */
    CONTAINER_RUNTIME: oneOf(['docker', 'podman']).default('podman'),
  })
  .superRefine(tlsPairRefinement, always);

/** The schema for each kind; its output is exactly the runtime's executor config. */
export const EXECUTOR_SCHEMAS = {
  popen: popenExecutorSchema,
  ec2: ec2ExecutorSchema,
  kubernetes: kubernetesExecutorSchema,
  kubernetesPodman: kubernetesPodmanExecutorSchema,
} satisfies Record<ExecutorKind, z.ZodType<ExecutorConfig>>;
