import { z } from 'zod';
import { parseSentinelAddress } from '../redis/sentinel-address.js';
import { expected, flag, mapping, text, wholeNumberOrDigits } from './field-schemas.js';

/**
 * `BUILD_MANAGER[1].ORCHESTRATOR` (reference §3.2). As in Quay, the first key's first `_`-word picks
 * the backend: `REDIS_*` is Redis, `MEM_*` (or no keys at all) is the in-memory orchestrator.
 */

export type OrchestratorBackend = 'redis' | 'memory';

/** The backend word of a key: `REDIS_HOST` → `redis`. */
function backendWord(key: string): string {
  return key.split('_')[0].toLowerCase();
}

/** Quay's old per-backend prefix keys (`REDIS_PREFIX`, …), replaced by ORCHESTRATOR_PREFIX. */
export function isLegacyPrefixKey(key: string): boolean {
  return key.split('_').at(-1)?.toLowerCase() === 'prefix';
}

/** Which backend a (checked) ORCHESTRATOR mapping selects. */
export function orchestratorBackend(orchestrator: Record<string, unknown>): OrchestratorBackend {
  const first = Object.keys(orchestrator)[0];
  return first !== undefined && backendWord(first) === 'redis' ? 'redis' : 'memory';
}

/**
 * The mapping as a whole, checked before its backend's keys: no legacy `*_PREFIX` key (Quay refuses
 * them too), and a first key that names a backend. Quay falls back to memory for any other first
 * key; we refuse, because a misspelt REDIS_HOST would otherwise give each instance its own private
 * in-memory state.
 */
export const orchestratorMappingSchema = mapping('a mapping of REDIS_* keys (or empty for the in-memory orchestrator)').superRefine(
  (orchestrator, ctx) => {
    const keys = Object.keys(orchestrator);
    for (const key of keys) {
      if (isLegacyPrefixKey(key))
        ctx.addIssue({
          code: 'custom',
          path: [key],
          message: 'legacy prefix: use ORCHESTRATOR_PREFIX (in BUILD_MANAGER[1], next to ORCHESTRATOR) instead',
        });
    }
    const first = keys[0];
    if (first !== undefined && !['redis', 'mem'].includes(backendWord(first)))
      ctx.addIssue({
        code: 'custom',
        path: [first],
        message: `the first key chooses the backend: REDIS_* keys for Redis, MEM_* (or no keys) for in-memory; ${JSON.stringify(first)} names neither`,
      });
  },
);

const SENTINEL_ADDRESS = 'host:port of a sentinel, e.g. sentinel-1:26379';

/** One REDIS_SENTINELS entry. */
const sentinelAddress = text(SENTINEL_ADDRESS).refine((v) => parseSentinelAddress(v) !== undefined, {
  error: expected(SENTINEL_ADDRESS),
});

/**
 * `REDIS_*` keys with Quay's defaults. Port and db may be quoted digits: redis-py takes those too.
 * Ours: REDIS_SENTINELS + REDIS_SENTINEL_MASTER (+ REDIS_SENTINEL_PASSWORD) find the master through
 * Redis Sentinel and follow its failovers; REDIS_HOST and REDIS_PORT are then unused.
 */
export const redisOrchestratorSchema = z.object({
  /** Default 127.0.0.1. */
  REDIS_HOST: text('a host name', { nonEmpty: true }).default('127.0.0.1'),
  /** Default 6379. */
  REDIS_PORT: wholeNumberOrDigits(1, 65535).default(6379),
  REDIS_PASSWORD: text('a password').optional(),
  /** Default 0. */
  REDIS_DB: wholeNumberOrDigits(0).default(0),
  /** Default false. */
  REDIS_SSL: flag().default(false),
  REDIS_CA_CERT: text('a CA certificate file path').optional(),
  REDIS_CERT_AND_KEY: z
    .tuple([text('a certificate file path'), text('a key file path')], {
      error: expected('a list of two file paths: [certificate, key]'),
    })
    .optional(),
  /** Default false. Set it where the server refuses CONFIG SET (managed Redis) and notifications are set up already. */
  REDIS_SKIP_KEYSPACE_EVENT_SETUP: flag().default(false),
  /** Ours. A non-empty list of `host:port`. */
  REDIS_SENTINELS: z
    .array(sentinelAddress, { error: expected(`a list of ${SENTINEL_ADDRESS}`) })
    .min(1, { error: expected(`at least one ${SENTINEL_ADDRESS}`) })
    .optional(),
  /** Ours. Required with REDIS_SENTINELS. */
  REDIS_SENTINEL_MASTER: text('the master name the sentinels monitor', { nonEmpty: true }).optional(),
  /** Ours. */
  REDIS_SENTINEL_PASSWORD: text('a password').optional(),
}).superRefine((redis, ctx) => {
  const sentinels = redis.REDIS_SENTINELS !== undefined;
  if (sentinels && redis.REDIS_SENTINEL_MASTER === undefined)
    ctx.addIssue({
      code: 'custom',
      path: ['REDIS_SENTINEL_MASTER'],
      message: 'required with REDIS_SENTINELS: the master name the sentinels monitor (their `sentinel monitor <name> ...` line)',
    });
  for (const key of ['REDIS_SENTINEL_MASTER', 'REDIS_SENTINEL_PASSWORD'] as const)
    if (!sentinels && redis[key] !== undefined)
      ctx.addIssue({
        code: 'custom',
        path: [key],
        message: 'only used with REDIS_SENTINELS: add the list of sentinels (host:port), or remove this key',
      });
});

/** `MEM_*` keys: Quay's tests write `MEM_CONFIG`, which carries nothing. */
export const memoryOrchestratorSchema = z.object({
  MEM_CONFIG: z.unknown().optional(),
});
