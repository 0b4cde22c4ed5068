/**
 * The validated configuration the runtime reads. Quay's key names are kept as they are, so a
 * reader can map every field back to `config.yaml`; buildman's own additions are prefixed
 * `BUILDMAN_` in the file and camelCase here.
 */

/** Keys every executor kind accepts (reference §5.1). */
export interface ExecutorCommonConfig {
  /** `NAME`, defaulting to the kind's class-like name (`popen` → `PopenExecutor`, …). Unique. */
  NAME: string;
  /** Seconds the worker has to register and heartbeat once started. Quay's default 500. */
  SETUP_TIME?: number;
  /** An executor is tried only while `retries_remaining` ≥ this. Default 0. */
  MINIMUM_RETRY_THRESHOLD: number;
  NAMESPACE_WHITELIST?: string[];
  /** A fraction 0..1 of namespaces (by sha256) allowed on this executor. */
  STAGED_ROLLOUT?: number;
  /** Keep workers after the build for debugging (not for popen). */
  DEBUG: boolean;
  CONTAINER_RUNTIME?: 'docker' | 'podman' | 'buildah';
  HTTP_PROXY?: string;
  HTTPS_PROXY?: string;
  NO_PROXY?: string;
  QUAY_USERNAME?: string;
  QUAY_PASSWORD?: string;
  WORKER_IMAGE?: string;
  WORKER_TAG?: string;
  MAX_LIFETIME_S?: number;
  SSH_AUTHORIZED_KEYS?: string[];
  CA_CERT?: string;
}

export interface PopenExecutorConfig extends ExecutorCommonConfig {
  EXECUTOR: 'popen';
  /** Default: this project's reference worker (`bin/buildman-worker.js`). */
  BUILDER_BINARY_LOCATION: string;
  BUILDAH_ISOLATION: string;
  INSECURE: boolean;
}

export interface Ec2ExecutorConfig extends ExecutorCommonConfig {
  EXECUTOR: 'ec2';
  EC2_REGION: string;
  AWS_ACCESS_KEY?: string;
  AWS_SECRET_KEY?: string;
  COREOS_AMI?: string;
  COREOS_CHANNEL: string;
  EC2_INSTANCE_TYPE: string;
  EC2_KEY_NAME?: string;
  EC2_VPC_SUBNET_ID?: string;
  EC2_SECURITY_GROUP_IDS?: string[];
  BLOCK_DEVICE_SIZE: number;
  /** Ours: an endpoint override (an emulator, a VPC endpoint). */
  EC2_ENDPOINT?: string;
}

export interface KubernetesExecutorConfig extends ExecutorCommonConfig {
  EXECUTOR: 'kubernetes' | 'kubernetesPodman';
  BUILDER_NAMESPACE: string;
  BUILDER_VM_CONTAINER_IMAGE: string;
  BUILDER_CONTAINER_IMAGE: string;
  K8S_API_SERVER: string;
  K8S_API_TLS_CERT?: string;
  K8S_API_TLS_KEY?: string;
  K8S_API_TLS_CA?: string;
  SERVICE_ACCOUNT_TOKEN?: string;
  VERIFY_TLS: boolean;
  K8S_API_TIMEOUT: number;
  KUBERNETES_DISTRIBUTION: 'basic' | 'openshift';
  CONTAINER_MEMORY_REQUEST: string;
  CONTAINER_MEMORY_LIMITS: string;
  CONTAINER_CPU_LIMITS: string;
  CONTAINER_CPU_REQUEST: string;
  VM_MEMORY_LIMIT: string;
  VOLUME_SIZE: string;
  IMAGE_PULL_POLICY: string;
  IMAGE_PULL_SECRET_NAME: string;
  SERVICE_ACCOUNT_NAME: string;
  NODE_SELECTOR_LABEL_KEY: string;
  NODE_SELECTOR_LABEL_VALUE: string;
  DNS_POLICY: string;
  MAXIMUM_JOB_TIME: number;
  RETENTION_AFTER_FINISHED: number;
  EXTRA_CA_CERTS?: string[];
}

export type ExecutorConfig = PopenExecutorConfig | Ec2ExecutorConfig | KubernetesExecutorConfig;

export type OrchestratorConfig =
  | { kind: 'memory' }
  | {
      kind: 'redis';
      REDIS_HOST: string;
      REDIS_PORT: number;
      REDIS_PASSWORD?: string;
      REDIS_DB: number;
      REDIS_SSL: boolean;
      REDIS_CA_CERT?: string;
      REDIS_CERT_AND_KEY?: [string, string];
      REDIS_SKIP_KEYSPACE_EVENT_SETUP: boolean;
      /** Ours: `host:port` of each Redis Sentinel; when set, the master comes from them, not REDIS_HOST. */
      REDIS_SENTINELS?: string[];
      /** Ours: the master name the sentinels monitor; required with REDIS_SENTINELS. */
      REDIS_SENTINEL_MASTER?: string;
      /** Ours: the sentinels' own password (REDIS_PASSWORD is the master's). */
      REDIS_SENTINEL_PASSWORD?: string;
    };

export interface ManagerConfig {
  /** Global cap on running workers, summed over all executors. Quay's default 1. */
  ALLOWED_WORKER_COUNT: number;
  ORCHESTRATOR_PREFIX: string;
  ORCHESTRATOR: OrchestratorConfig;
  EXECUTORS: ExecutorConfig[];
  /** Seconds; the job key TTL before scheduling, and the registration token lifetime minus 30. */
  JOB_REGISTRATION_TIMEOUT: number;
  /** Seconds; the longest a build may live; the job token lifetime. */
  MACHINE_MAX_TIME: number;
  /** Ours: first retry delay after an infrastructure failure; doubles per attempt (cap 10 min). Default 30. */
  retryBackoffSeconds: number;
  /** Ours: seconds a heartbeat or log line keeps a job alive (Quay: 2 × 30). Default 60. */
  heartbeatTtlSeconds?: number;
  /** Ours: how long a finished build's actor snapshot and history are kept. Default 7 days. */
  historyRetentionSeconds?: number;
  /** Ours: the most events kept in one build's history. Default 10000. */
  historyMaxEvents?: number;
  /** Ours: seconds between orphan sweeps. Default 60. */
  orphanSweepSeconds?: number;
  /** Ours: a worker younger than this is never an orphan. Default 120. */
  orphanGraceSeconds?: number;
  /** Ours: control-plane calls per second per executor. Default 10. */
  executorRateLimit?: number;
  /** Ours: retries a new build starts with (Quay queues with 3). */
  buildRetries: number;
}

export interface ServerConfig {
  /** gRPC listen address for workers. Default 0.0.0.0:50051 ([::]:50051 in Quay). */
  grpcHost: string;
  grpcPort: number;
  /** HTTP API listen address. Default 127.0.0.1:8686. */
  httpHost: string;
  httpPort: number;
  /** Where keys, uploaded contexts and built images (embedded default) are kept. Default ./.buildman */
  dataDir: string;
  /** The URL workers use to reach the HTTP API (uploaded contexts). Default http://<httpHost>:<httpPort>. */
  publicUrl: string;
  /** Ours: the gRPC address handed to workers when it is not this instance's own (a load balancer). */
  workerGrpcAddress?: string;
  /** Max uploaded context size in bytes. Default 100 MiB. */
  maxContextBytes: number;
}

export interface BuildmanConfig {
  FEATURE_BUILD_SUPPORT: boolean;
  /** The registry builds push to (Quay's SERVER_HOSTNAME). Unset in the embedded default: images go to OCI archives. */
  SERVER_HOSTNAME?: string;
  /** The manager's hostname: JWT audience and the address handed to workers. */
  BUILDMAN_HOSTNAME: string;
  /** `http` or `https`; Quay's PREFERRED_URL_SCHEME, used for URLs handed to workers. */
  PREFERRED_URL_SCHEME: 'http' | 'https';
  INSTANCE_SERVICE_KEY_SERVICE: string;
  INSTANCE_SERVICE_KEY_LOCATION?: string;
  INSTANCE_SERVICE_KEY_KID_LOCATION?: string;
  manager: ManagerConfig;
  server: ServerConfig;
  /** Keys present in the file that buildman does not know (warned about, never fatal). */
  unknownKeys: string[];
  /** Values to scrub from any log line or snapshot (passwords, tokens, keys found in the config). */
  secrets: string[];
}
