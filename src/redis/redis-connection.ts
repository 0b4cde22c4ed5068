import { readFileSync } from 'node:fs';
import { Redis, type RedisOptions } from 'ioredis';
import type { OrchestratorConfig } from '../config/config-types.js';
import { ConfigError, InfraError } from '../errors/buildman-error.js';
import type { Logger } from '../util/logger.js';
import { parseSentinelAddress } from './sentinel-address.js';

export type RedisOrchestratorConfig = Extract<OrchestratorConfig, { kind: 'redis' }>;

/**
 * ioredis options from Quay's ORCHESTRATOR keys. Quay connects with a 1 s connect timeout and no
 * read timeout (pub/sub connections stay open for hours); ioredis reconnects on its own.
 *
 * Sentinel (ours, not Quay's): with `REDIS_SENTINELS: ["host:port", ...]` and `REDIS_SENTINEL_MASTER`
 * (the name the sentinels monitor), ioredis asks the sentinels for the current master instead of
 * using REDIS_HOST/REDIS_PORT, and follows a failover (`failoverDetector` reconnects as soon as a
 * sentinel announces `+switch-master`). `REDIS_SENTINEL_PASSWORD` authenticates to the sentinels;
 * REDIS_PASSWORD and REDIS_DB still apply to the master. With REDIS_SSL the master connection uses
 * TLS; the sentinel connections stay plain.
 */
export function redisOptions(config: RedisOrchestratorConfig): RedisOptions {
  const opts: RedisOptions = {
    db: config.REDIS_DB,
    password: config.REDIS_PASSWORD,
    connectTimeout: 1000,
    // RESP2: subscriber connections then refuse ordinary commands, which catches misuse early.
    protocol: 2,
    // Commands issued while disconnected wait for the reconnect, but never forever.
    maxRetriesPerRequest: 3,
    // Back within 2 s of Redis returning (ioredis 6's default backs off to 5 s).
    retryStrategy: (times) => Math.min(times * 100, 2000),
    lazyConnect: false,
  };
  if (!config.REDIS_SENTINELS?.length) {
    opts.host = config.REDIS_HOST;
    opts.port = config.REDIS_PORT;
  } else {
    opts.sentinels = config.REDIS_SENTINELS.map((entry) => {
      const address = parseSentinelAddress(entry);
      if (!address) throw new ConfigError(`REDIS_SENTINELS: expected host:port, got ${JSON.stringify(entry)}`);
      return address;
    });
    opts.name = config.REDIS_SENTINEL_MASTER;
    opts.sentinelPassword = config.REDIS_SENTINEL_PASSWORD;
    opts.failoverDetector = true;
    // A sentinel that accepts the connection but never answers must not stall the reconnect.
    opts.sentinelCommandTimeout = 1000;
    if (config.REDIS_SSL) opts.enableTLSForSentinelMode = true;
  }
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

/**
 * A new connection; `name` shows in CLIENT LIST so operators can tell buildman's connections apart.
 * `overrides` adjust the options for one role (a subscriber, a command connection with a timeout).
 */
export function createRedis(config: RedisOrchestratorConfig, name: string, overrides: RedisOptions = {}): Redis {
  return new Redis({ ...redisOptions(config), connectionName: `buildman:${name}`, ...overrides });
}

/**
 * Every connection needs an 'error' listener, or an outage crashes the process. Logs once when the
 * connection goes bad and once when it is back, not on every reconnect attempt.
 */
export function watchConnectionHealth(redis: Redis, log: Logger, connection: string): Redis {
  let healthy = true;
  redis.on('error', (err: Error) => {
    if (!healthy) return;
    healthy = false;
    log.warn({ connection, err: err.message }, 'Redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    if (healthy) return;
    healthy = true;
    log.info({ connection }, 'Redis connection restored');
  });
  return redis;
}

/** Wraps a Redis failure as a retryable infrastructure error that names Redis. */
export function redisUnavailable(err: unknown): InfraError {
  const message = err instanceof Error ? err.message : String(err);
  return new InfraError(`Redis is unavailable: ${message}`, 'REDIS_UNAVAILABLE', err);
}

/**
 * Closes a connection: QUIT when connected (pending replies drain first), else, or when Redis does
 * not answer within `timeoutMs`, drop the socket. Never hangs, never throws.
 */
export async function closeRedis(redis: Redis, timeoutMs = 3000): Promise<void> {
  if (redis.status === 'end') return;
  // Not connected (an outage): nothing to wait for, and QUIT would sit in the offline queue.
  if (redis.status !== 'ready') {
    redis.disconnect();
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)));
  try {
    const result = await Promise.race([redis.quit(), timedOut]);
    if (result === 'timeout') redis.disconnect();
  } catch {
    redis.disconnect();
  } finally {
    clearTimeout(timer);
  }
}
