import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { OrchestratorConfig } from '../config/config-types.js';
import { InfraError } from '../errors/buildman-error.js';

export type RedisOrchestratorConfig = Extract<OrchestratorConfig, { kind: 'redis' }>;

/**
 * ioredis options from Quay's ORCHESTRATOR keys. Quay connects with a 1 s connect timeout and no
 * read timeout (pub/sub connections stay open for hours); ioredis reconnects on its own.
 */
export function redisOptions(config: RedisOrchestratorConfig): RedisOptions {
  const opts: RedisOptions = {
    host: config.REDIS_HOST,
    port: config.REDIS_PORT,
    db: config.REDIS_DB,
    password: config.REDIS_PASSWORD,
    connectTimeout: 1000,
    // RESP2: subscriber connections then refuse ordinary commands, which catches misuse early.
    protocol: 2,
    // Commands issued while disconnected wait for the reconnect, but never forever.
    maxRetriesPerRequest: 3,
    lazyConnect: false,
  };
  if (config.REDIS_SSL) {
    opts.tls = {
      ...(config.REDIS_CA_CERT ? { ca: readFileSync(config.REDIS_CA_CERT) } : {}),
      ...(config.REDIS_CERT_AND_KEY
        ? { cert: readFileSync(config.REDIS_CERT_AND_KEY[0]), key: readFileSync(config.REDIS_CERT_AND_KEY[1]) }
        : {}),
    };
  }
  return opts;
}

/** A new connection; `name` shows in CLIENT LIST so operators can tell buildman's connections apart. */
export function createRedis(config: RedisOrchestratorConfig, name: string): Redis {
  return new Redis({ ...redisOptions(config), connectionName: `buildman:${name}` });
}

/** Wraps a Redis failure as a retryable infrastructure error that names Redis. */
export function redisUnavailable(err: unknown): InfraError {
  const message = err instanceof Error ? err.message : String(err);
  return new InfraError(`Redis is unavailable: ${message}`, 'REDIS_UNAVAILABLE', err);
}
