import { resolve } from 'node:path';
import type { z } from 'zod';
import { ConfigError } from '../errors/buildman-error.js';
import { collectSecrets } from './config-secrets.js';
import { managerKindSchema, managerSchema, OVERRIDE_FLAGS, overrideSchemas, topLevelSchema } from './config-schemas.js';
import type { BuildmanConfig, ExecutorConfig, ManagerConfig, OrchestratorConfig, ServerConfig } from './config-types.js';
import { EXECUTOR_SCHEMAS, executorHeadSchema, type ExecutorKind } from './executor-schemas.js';
import { hostAndPort } from './field-schemas.js';
import { formatKeyPath, type KeyPath } from './key-path.js';
import {
  isLegacyPrefixKey,
  memoryOrchestratorSchema,
  orchestratorBackend,
  orchestratorMappingSchema,
  redisOrchestratorSchema,
} from './orchestrator-schemas.js';
import { isQuayOnlyKey } from './quay-only-keys.js';

/** Command-line values that win over the file. */
export interface ConfigOverrides {
  grpcPort?: number;
  httpPort?: number;
  grpcHost?: string;
  httpHost?: string;
  dataDir?: string;
}

export interface ValidateOptions {
  /** Names the file in the error message. Default `config`. */
  source?: string;
  overrides?: ConfigOverrides;
  /** Where BUILDMAN_HOSTNAME may come from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** What a relative BUILDMAN_DATA_DIR is resolved against. Default `process.cwd()`. */
  cwd?: string;
}

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** An empty `KEY:` reads as null; treat it as absent, so the default applies (or "required" is said). */
function withoutNulls(value: unknown): unknown {
  return isMapping(value) ? Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null)) : value;
}

/**
 * Collects problems and unknown keys while the file is checked section by section. Each section is
 * checked on its own, so a mistake in one does not hide the mistakes in the others.
 */
class Findings {
  readonly issues: string[] = [];
  readonly unknownKeys: string[] = [];

  /** Runs `schema` on one section; its problems are recorded under `where` (a key path, or a label). */
  check<S extends z.ZodType>(schema: S, value: unknown, where: KeyPath | string): z.output<S> | undefined {
    const result = schema.safeParse(withoutNulls(value), { reportInput: true });
    if (result.success) return result.data;
    for (const issue of result.error.issues) {
      const at = typeof where === 'string' ? where : formatKeyPath([...where, ...issue.path]);
      const line = `${at}: ${issue.message}`;
      // zod can report one mistake twice (a wrong type also fails the length check); say it once.
      if (!this.issues.includes(line)) this.issues.push(line);
    }
    return undefined;
  }

  /** Records the keys of `value` that `known` does not list (warnings, never errors). */
  noteUnknownKeys(value: unknown, path: KeyPath, known: readonly string[], ignore = (_key: string) => false): void {
    if (!isMapping(value)) return;
    for (const key of Object.keys(value))
      if (!known.includes(key) && !ignore(key)) this.unknownKeys.push(formatKeyPath([...path, key]));
  }
}

/** Turns a parsed config file (plain data, as YAML gives it) into the runtime's config, or throws ConfigError. */
export function validateConfig(file: unknown, opts: ValidateOptions = {}): BuildmanConfig {
  const source = opts.source ?? 'config';
  const env = opts.env ?? process.env;
  const found = new Findings();
  const raw = file ?? {}; // an empty file

  const top = found.check(topLevelSchema, raw, []);
  found.noteUnknownKeys(raw, [], Object.keys(topLevelSchema.shape), isQuayOnlyKey);

  const buildManager = isMapping(raw) ? raw.BUILD_MANAGER : undefined;
  const manager = Array.isArray(buildManager) && buildManager.length === 2 ? checkManager(found, buildManager) : undefined;

  const overrides: ConfigOverrides = {};
  for (const key of Object.keys(overrideSchemas) as (keyof ConfigOverrides)[]) {
    const value = found.check(overrideSchemas[key], opts.overrides?.[key], OVERRIDE_FLAGS[key]);
    if (value !== undefined) Object.assign(overrides, { [key]: value });
  }

  const envHostname = env.BUILDMAN_HOSTNAME?.trim() || undefined;
  if (envHostname !== undefined) found.check(hostAndPort(), envHostname, 'environment variable BUILDMAN_HOSTNAME');

  if (found.issues.length > 0 || top === undefined || manager === undefined) {
    if (found.issues.length === 0) found.issues.push('(top level): cannot be used, though no single key is wrong (a bug: please report it)');
    const count = found.issues.length === 1 ? '1 problem' : `${found.issues.length} problems`;
    const typos = found.unknownKeys.length ? `\n(unknown keys, perhaps misspelt: ${found.unknownKeys.join(', ')})` : '';
    throw new ConfigError(`${source}: ${count}:\n${found.issues.join('\n')}${typos}`, found.issues);
  }

  return {
    FEATURE_BUILD_SUPPORT: top.FEATURE_BUILD_SUPPORT,
    SERVER_HOSTNAME: top.SERVER_HOSTNAME,
    // Quay's order: the environment, then the file, then the registry's own name.
    BUILDMAN_HOSTNAME: envHostname ?? top.BUILDMAN_HOSTNAME ?? top.SERVER_HOSTNAME ?? 'localhost',
    PREFERRED_URL_SCHEME: top.PREFERRED_URL_SCHEME,
    INSTANCE_SERVICE_KEY_SERVICE: top.INSTANCE_SERVICE_KEY_SERVICE,
    INSTANCE_SERVICE_KEY_LOCATION: top.INSTANCE_SERVICE_KEY_LOCATION,
    INSTANCE_SERVICE_KEY_KID_LOCATION: top.INSTANCE_SERVICE_KEY_KID_LOCATION,
    manager,
    server: serverConfig(top, overrides, opts.cwd ?? process.cwd()),
    unknownKeys: found.unknownKeys,
    secrets: collectSecrets(raw),
  };
}

/** Listen addresses and the rest, after command-line overrides. */
function serverConfig(top: z.output<typeof topLevelSchema>, overrides: ConfigOverrides, cwd: string): ServerConfig {
  const httpHost = overrides.httpHost ?? top.BUILDMAN_HTTP_HOST;
  const httpPort = overrides.httpPort ?? top.BUILDMAN_HTTP_PORT;
  return {
    grpcHost: overrides.grpcHost ?? top.BUILDMAN_GRPC_HOST,
    grpcPort: overrides.grpcPort ?? top.BUILDMAN_GRPC_PORT,
    httpHost,
    httpPort,
    dataDir: resolve(cwd, overrides.dataDir ?? top.BUILDMAN_DATA_DIR),
    publicUrl: top.BUILDMAN_PUBLIC_URL ?? `http://${reachableHost(httpHost)}:${httpPort}`,
    maxContextBytes: top.BUILDMAN_MAX_CONTEXT_BYTES,
    workerGrpcAddress: top.BUILDMAN_WORKER_GRPC_ADDRESS,
  };
}

/** A wildcard listen address is not something a client can connect to: use loopback instead. */
function reachableHost(listenHost: string): string {
  if (listenHost === '0.0.0.0') return '127.0.0.1';
  if (listenHost === '::' || listenHost === '[::]') return '[::1]';
  return listenHost.includes(':') && !listenHost.startsWith('[') ? `[${listenHost}]` : listenHost;
}

/** `BUILD_MANAGER: [kind, manager]`, its orchestrator and its executors. */
function checkManager(found: Findings, buildManager: unknown[]): ManagerConfig | undefined {
  const path: KeyPath = ['BUILD_MANAGER', 1];
  const kind = found.check(managerKindSchema, buildManager[0], ['BUILD_MANAGER', 0]);
  const rawManager = buildManager[1];
  const manager = found.check(managerSchema, rawManager, path);
  found.noteUnknownKeys(rawManager, path, Object.keys(managerSchema.shape));
  if (!isMapping(rawManager)) return undefined;

  const orchestrator = checkOrchestrator(found, rawManager.ORCHESTRATOR, [...path, 'ORCHESTRATOR']);
  const executors = checkExecutors(found, rawManager, path);
  if (kind === undefined || manager === undefined || orchestrator === undefined || executors === undefined) return undefined;
  return {
    ALLOWED_WORKER_COUNT: manager.ALLOWED_WORKER_COUNT,
    ORCHESTRATOR_PREFIX: manager.ORCHESTRATOR_PREFIX,
    ORCHESTRATOR: orchestrator,
    EXECUTORS: executors,
    JOB_REGISTRATION_TIMEOUT: manager.JOB_REGISTRATION_TIMEOUT,
    MACHINE_MAX_TIME: manager.MACHINE_MAX_TIME,
    retryBackoffSeconds: manager.BUILDMAN_RETRY_BACKOFF_SECONDS,
    heartbeatTtlSeconds: manager.BUILDMAN_HEARTBEAT_TTL_SECONDS,
    historyRetentionSeconds: manager.BUILDMAN_HISTORY_RETENTION_SECONDS,
    historyMaxEvents: manager.BUILDMAN_HISTORY_MAX_EVENTS,
    orphanSweepSeconds: manager.BUILDMAN_ORPHAN_SWEEP_SECONDS,
    orphanGraceSeconds: manager.BUILDMAN_ORPHAN_GRACE_SECONDS,
    executorRateLimit: manager.BUILDMAN_EXECUTOR_RATE_LIMIT,
    buildRetries: manager.BUILDMAN_BUILD_RETRIES,
  };
}

function checkOrchestrator(found: Findings, value: unknown, path: KeyPath): OrchestratorConfig | undefined {
  const orchestrator = value ?? {};
  const mappingOk = found.check(orchestratorMappingSchema, orchestrator, path) !== undefined;
  if (!isMapping(orchestrator)) return undefined;
  // The backend's own keys are checked even after a legacy-prefix error, to report everything at once.
  const keys = Object.fromEntries(Object.entries(orchestrator).filter(([key]) => !isLegacyPrefixKey(key)));
  if (orchestratorBackend(orchestrator) === 'redis') {
    const redis = found.check(redisOrchestratorSchema, keys, path);
    found.noteUnknownKeys(keys, path, Object.keys(redisOrchestratorSchema.shape));
    return mappingOk && redis ? { kind: 'redis', ...redis } : undefined;
  }
  const memory = found.check(memoryOrchestratorSchema, keys, path);
  found.noteUnknownKeys(keys, path, Object.keys(memoryOrchestratorSchema.shape));
  return mappingOk && memory ? { kind: 'memory' } : undefined;
}

/** EXECUTORS in order, or the legacy EXECUTOR + EXECUTOR_CONFIG pair. Shape errors are the manager schema's. */
function checkExecutors(found: Findings, rawManager: Mapping, path: KeyPath): ExecutorConfig[] | undefined {
  const list = rawManager.EXECUTORS ?? undefined;
  const checked: { executor: ExecutorConfig | undefined; body: unknown; path: KeyPath }[] = [];

  if (list !== undefined) {
    if (!Array.isArray(list)) return undefined;
    // Quay reads the legacy pair only when EXECUTORS is absent.
    for (const legacy of ['EXECUTOR', 'EXECUTOR_CONFIG'])
      if (rawManager[legacy] != null) found.unknownKeys.push(formatKeyPath([...path, legacy]));
    list.forEach((item, i) => {
      const at = [...path, 'EXECUTORS', i];
      const head = found.check(executorHeadSchema, item, at);
      checked.push({ executor: head && checkExecutor(found, head.EXECUTOR, item, at), body: item, path: at });
    });
  } else {
    const kind = managerSchema.shape.EXECUTOR.safeParse(rawManager.EXECUTOR ?? undefined);
    const body = rawManager.EXECUTOR_CONFIG ?? {};
    if (!kind.success || kind.data === undefined || !isMapping(body)) return undefined;
    const at = [...path, 'EXECUTOR_CONFIG'];
    checked.push({ executor: checkExecutor(found, kind.data, body, at), body, path: at });
  }

  // Quay refuses duplicate names too: they key metrics and the per-executor bookkeeping.
  const firstUse = new Map<string, string>();
  for (const { executor, body, path: at } of checked) {
    if (executor === undefined) continue;
    const namePath = formatKeyPath([...at, 'NAME']);
    const prior = firstUse.get(executor.NAME);
    if (prior === undefined) {
      firstUse.set(executor.NAME, namePath);
      continue;
    }
    const defaulted = (body as Mapping).NAME == null ? ` (the default NAME for ${executor.EXECUTOR})` : '';
    found.issues.push(`${namePath}: duplicate executor name "${executor.NAME}"${defaulted}, also used by ${prior}; give each executor its own NAME`);
  }

  const executors = checked.map((c) => c.executor);
  return executors.every((e): e is ExecutorConfig => e !== undefined) ? executors : undefined;
}

/** One executor's keys, by the schema of its kind. */
function checkExecutor(found: Findings, kind: ExecutorKind, body: unknown, path: KeyPath): ExecutorConfig | undefined {
  const schema = EXECUTOR_SCHEMAS[kind];
  found.noteUnknownKeys(body, path, Object.keys(schema.shape));
  return found.check(schema, { ...(body as Mapping), EXECUTOR: kind }, path);
}
