import { z } from 'zod';
import { EXECUTOR_KINDS, executorKindSchema } from './executor-schemas.js';
import {
  decimal,
  expected,
  flag,
  hostAndPort,
  httpUrl,
  mapping,
  oneOf,
  port,
  show,
  text,
  wholeNumber,
} from './field-schemas.js';

/** The top level and `BUILD_MANAGER[1]` (reference §0). Orchestrator and executors have their own files. */

const BUILD_MANAGER_SHAPE = 'a 2-item list [ephemeral, {ALLOWED_WORKER_COUNT, ORCHESTRATOR, EXECUTORS, …}]';

/** Top-level keys buildman reads. Anything else is either a Quay key we ignore or an unknown key. */
export const topLevelSchema = z.object(
  {
    /** Default true. When false, `serve` refuses to start, as Quay's builder sleeps. */
    FEATURE_BUILD_SUPPORT: flag().default(true),
    /** The registry builds push to. */
    SERVER_HOSTNAME: hostAndPort('the registry host with an optional :port, e.g. quay.example.com').optional(),
    /** The manager's host; falls back to SERVER_HOSTNAME, then localhost. */
    BUILDMAN_HOSTNAME: hostAndPort('the build manager host with an optional :port').optional(),
    /** Default http. */
    PREFERRED_URL_SCHEME: oneOf(['http', 'https']).default('http'),
    /** Default quay. */
    INSTANCE_SERVICE_KEY_SERVICE: text('a service name', { nonEmpty: true }).default('quay'),
    INSTANCE_SERVICE_KEY_LOCATION: text('a private key file path', { nonEmpty: true }).optional(),
    INSTANCE_SERVICE_KEY_KID_LOCATION: text('a key id file path', { nonEmpty: true }).optional(),
    /** Checked as a 2-item list here; its items are checked as their own sections. */
    BUILD_MANAGER: z
      .array(z.unknown(), {
        error: expected(
          BUILD_MANAGER_SHAPE,
          `required: ${BUILD_MANAGER_SHAPE} (see examples/config.example.yaml, or run without a config file for the embedded default)`,
        ),
      })
      .length(2, { error: expected(BUILD_MANAGER_SHAPE) }),
    /** Default 0.0.0.0: workers on other machines must reach the gRPC port. */
    BUILDMAN_GRPC_HOST: text('a listen address such as 0.0.0.0', { nonEmpty: true }).default('0.0.0.0'),
    /** Default 50051, Quay's port. */
    BUILDMAN_GRPC_PORT: port().default(50051),
    /** Default 127.0.0.1: the API has no authentication of its own. */
    BUILDMAN_HTTP_HOST: text('a listen address such as 127.0.0.1', { nonEmpty: true }).default('127.0.0.1'),
    /** Default 8686 (Quay's unused BUILDMAN_CONTROLLER_PORT). */
    BUILDMAN_HTTP_PORT: port().default(8686),
    /** Default http://<http host>:<http port>. */
    BUILDMAN_PUBLIC_URL: httpUrl().optional(),
    /** Default: this instance's own gRPC address. Set it to a load balancer in front of several instances. */
    BUILDMAN_WORKER_GRPC_ADDRESS: hostAndPort('host:port that workers dial, e.g. buildman-lb.example.com:50051').optional(),
    /** Default ./.buildman, relative to the working directory. */
    BUILDMAN_DATA_DIR: text('a directory path', { nonEmpty: true }).default('./.buildman'),
    /** Default 100 MiB. */
    BUILDMAN_MAX_CONTEXT_BYTES: wholeNumber(1, undefined, 'bytes').default(100 * 1024 * 1024),
  },
  { error: expected('a mapping of config keys (FEATURE_BUILD_SUPPORT, BUILD_MANAGER, …)') },
);

/** `BUILD_MANAGER[0]`. Quay's other kinds run no manager, so there is nothing for buildman to do. */
export const managerKindSchema = z.literal('ephemeral', {
  error: (issue) => {
    if (issue.input === 'external')
      return '"external" is not served by buildman: with it Quay runs no build manager and expects builders to be run elsewhere; use ephemeral';
    if (issue.input === 'enterprise')
      return '"enterprise" is not served by buildman: it is Quay\'s default and runs no build manager; use ephemeral';
    return `expected ephemeral (the only kind buildman serves), got ${show(issue.input)}`;
  },
});

const kindList = EXECUTOR_KINDS.join(', ');

/** `BUILD_MANAGER[1]`. */
export const managerSchema = z
  .object(
    {
      /** Default 1. */
      ALLOWED_WORKER_COUNT: wholeNumber(1).default(1),
      /** Default "". */
      ORCHESTRATOR_PREFIX: text('a key prefix such as buildman/production/').default(''),
      /** Missing or empty: the in-memory orchestrator. */
      ORCHESTRATOR: mapping('a mapping of REDIS_* keys (or empty for the in-memory orchestrator)').optional(),
      EXECUTORS: z
        .array(z.unknown(), { error: expected('a list of executors, each a mapping starting with EXECUTOR') })
        .min(1, { error: expected('a list of at least one executor') })
        .optional(),
      /** Legacy single-executor form, used when EXECUTORS is absent. */
      EXECUTOR: executorKindSchema.optional(),
      EXECUTOR_CONFIG: mapping('a mapping of executor keys').optional(),
      /** Default 30. */
      JOB_REGISTRATION_TIMEOUT: wholeNumber(1, undefined, 'seconds').default(30),
      /** Default 7200. */
      MACHINE_MAX_TIME: wholeNumber(1, undefined, 'seconds').default(7200),
      /** Ours, default 30. */
      BUILDMAN_RETRY_BACKOFF_SECONDS: decimal(0, 'seconds').default(30),
      /** Ours, default 60: how long a heartbeat or log line keeps a job alive (Quay: 2 × 30 s). */
      BUILDMAN_HEARTBEAT_TTL_SECONDS: wholeNumber(1, undefined, 'seconds').default(60),
      /** Ours, default 7 days: how long a finished build's snapshot and history are kept. */
      BUILDMAN_HISTORY_RETENTION_SECONDS: wholeNumber(60, undefined, 'seconds').default(7 * 86_400),
      /** Ours, default 60: how often workers that belong to no live build are looked for and stopped. */
      BUILDMAN_ORPHAN_SWEEP_SECONDS: wholeNumber(1, undefined, 'seconds').default(60),
      /** Ours, default 120: a worker younger than this is never taken for an orphan. */
      BUILDMAN_ORPHAN_GRACE_SECONDS: wholeNumber(0, undefined, 'seconds').default(120),
      /** Ours, default 10: control-plane calls per second per executor (bursts of twice that). */
      BUILDMAN_EXECUTOR_RATE_LIMIT: decimal(0.1).default(10),
      /** Ours, default 10000: the most events kept per build history (oldest dropped first). */
      BUILDMAN_HISTORY_MAX_EVENTS: wholeNumber(10).default(10_000),
      /** Ours, default 3 (what Quay queues builds with). */
      BUILDMAN_BUILD_RETRIES: wholeNumber(0).default(3),
    },
    { error: expected('a mapping of manager keys (ALLOWED_WORKER_COUNT, ORCHESTRATOR, EXECUTORS, …)') },
  )
  .superRefine(
    (m, ctx) => {
      if (typeof m !== 'object' || m === null || Array.isArray(m) || m.EXECUTORS !== undefined) return;
      if (m.EXECUTOR === undefined && m.EXECUTOR_CONFIG === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['EXECUTORS'],
          message: `required: a list of executors, e.g. [{EXECUTOR: popen}] (kinds: ${kindList}), or the legacy EXECUTOR + EXECUTOR_CONFIG`,
        });
      else if (m.EXECUTOR === undefined)
        ctx.addIssue({ code: 'custom', path: ['EXECUTOR'], message: `required with EXECUTOR_CONFIG: the executor kind, one of ${kindList}` });
    },
    { when: () => true },
  );

/** Command-line overrides, checked like the keys they replace. */
export const overrideSchemas = {
  grpcPort: port().optional(),
  httpPort: port().optional(),
  grpcHost: text('a listen address', { nonEmpty: true }).optional(),
  httpHost: text('a listen address', { nonEmpty: true }).optional(),
  dataDir: text('a directory path', { nonEmpty: true }).optional(),
};

/** The flag each override comes from, for messages. */
export const OVERRIDE_FLAGS: Readonly<Record<keyof typeof overrideSchemas, string>> = {
  grpcPort: '--grpc-port',
  httpPort: '--http-port',
  grpcHost: '--grpc-host',
  httpHost: '--http-host',
  dataDir: '--data-dir',
};
