import { redact } from '../util/redact.js';
import type { BuildmanConfig, ExecutorConfig, OrchestratorConfig } from './config-types.js';
import { DEFAULT_SETUP_TIME } from './executor-schemas.js';

/**
 * A short summary of what buildman will run with, for `check-config` and the serve banner. It
 * names things (hosts, kinds, limits) and never prints a secret: passwords and tokens are only
 * said to be set, and the finished text is scrubbed of every config secret as a second guard.
 */
export function describeConfig(cfg: BuildmanConfig, opts: { source?: string } = {}): string {
  const { manager, server } = cfg;
  // A row is a labelled value, or a line of its own (the executor list).
  const rows: ([string, string] | string)[] = [];
  const row = (label: string, value: string) => rows.push([label, value]);

  if (opts.source) row('config', opts.source);
  row('builds', cfg.FEATURE_BUILD_SUPPORT ? 'enabled' : 'disabled (FEATURE_BUILD_SUPPORT: false)');
  row(
    'registry',
    cfg.SERVER_HOSTNAME
      ? `${cfg.SERVER_HOSTNAME} (${cfg.PREFERRED_URL_SCHEME})`
      : 'none (SERVER_HOSTNAME unset: images are saved as OCI archives in the data dir)',
  );
  row('manager host', cfg.BUILDMAN_HOSTNAME);
  row('orchestrator', describeOrchestrator(manager.ORCHESTRATOR, manager.ORCHESTRATOR_PREFIX));
  row('worker cap', `${manager.ALLOWED_WORKER_COUNT} (ALLOWED_WORKER_COUNT, across all executors)`);
  rows.push('executors, tried in this order:');
  manager.EXECUTORS.forEach((e, i) => rows.push(`  ${i + 1}. ${e.NAME} (${e.EXECUTOR}): ${describeExecutor(e)}`));
  row(
    'timing',
    `registration ${manager.JOB_REGISTRATION_TIMEOUT} s, build at most ${manager.MACHINE_MAX_TIME} s, ` +
      `${manager.buildRetries} retries with backoff from ${manager.retryBackoffSeconds} s`,
  );
  row('gRPC (workers)', `${server.grpcHost}:${server.grpcPort}`);
  row('HTTP API', `${server.httpHost}:${server.httpPort} (workers fetch contexts from ${server.publicUrl})`);
  row('data dir', server.dataDir);
  if (cfg.unknownKeys.length > 0) row('unknown keys', `${cfg.unknownKeys.join(', ')} (ignored)`);

  const width = Math.max(...rows.map((r) => (typeof r === 'string' ? 0 : r[0].length))) + 2;
  const lines = rows.map((r) => (typeof r === 'string' ? r : `${r[0]}:`.padEnd(width) + r[1]));
  return redact(lines.join('\n') + '\n', cfg.secrets);
}

function describeOrchestrator(o: OrchestratorConfig, prefix: string): string {
  const keys = `key prefix ${JSON.stringify(prefix)}`;
  if (o.kind === 'memory') return `memory (this process only; use REDIS_* keys to share builds between instances), ${keys}`;
  const extras = [
    o.REDIS_SSL ? 'TLS' : 'no TLS',
    o.REDIS_PASSWORD ? 'password set' : 'no password',
    ...(o.REDIS_CERT_AND_KEY ? ['client certificate'] : []),
    ...(o.REDIS_SKIP_KEYSPACE_EVENT_SETUP ? ['keyspace events set up outside buildman'] : []),
  ];
  return `redis ${o.REDIS_HOST}:${o.REDIS_PORT} db ${o.REDIS_DB} (${extras.join(', ')}), ${keys}`;
}

function describeExecutor(e: ExecutorConfig): string {
  const parts: string[] = [];
  switch (e.EXECUTOR) {
    case 'popen':
      parts.push(e.BUILDER_BINARY_LOCATION, `runtime ${e.CONTAINER_RUNTIME ?? 'buildah'}`);
      if (e.INSECURE) parts.push('plaintext gRPC on loopback');
      break;
    case 'ec2':
      parts.push(e.EC2_REGION, e.EC2_INSTANCE_TYPE, `image ${e.WORKER_IMAGE}:${e.WORKER_TAG}`);
      if (e.EC2_VPC_SUBNET_ID) parts.push(`subnet ${e.EC2_VPC_SUBNET_ID}`);
      if (e.EC2_ENDPOINT) parts.push(`endpoint ${e.EC2_ENDPOINT}`);
      break;
    case 'kubernetes':
    case 'kubernetesPodman':
      parts.push(
        `API ${e.K8S_API_SERVER}`,
        `namespace ${e.BUILDER_NAMESPACE}`,
        e.KUBERNETES_DISTRIBUTION,
        e.SERVICE_ACCOUNT_TOKEN ? 'token auth' : e.K8S_API_TLS_CERT ? 'client-certificate auth' : 'no auth',
      );
      if (!e.VERIFY_TLS) parts.push('TLS not verified');
      parts.push(e.EXECUTOR === 'kubernetes' ? `image ${e.WORKER_IMAGE}:${e.WORKER_TAG}` : `image ${e.BUILDER_CONTAINER_IMAGE}`);
      break;
  }
  parts.push(`setup ${e.SETUP_TIME ?? DEFAULT_SETUP_TIME} s`);
  if (e.MINIMUM_RETRY_THRESHOLD > 0) parts.push(`only while ≥ ${e.MINIMUM_RETRY_THRESHOLD} retries remain`);
  if (e.NAMESPACE_WHITELIST?.length) parts.push(`namespaces ${e.NAMESPACE_WHITELIST.join(', ')}`);
  if (e.STAGED_ROLLOUT !== undefined) parts.push(`staged rollout ${Math.round(e.STAGED_ROLLOUT * 100)}%`);
  if (e.DEBUG) parts.push('DEBUG (workers kept)');
  return parts.join(', ');
}
