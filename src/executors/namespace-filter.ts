import { createHash } from 'node:crypto';
import type { ExecutorCommonConfig } from '../config/config-types.js';

/**
 * Quay's per-executor namespace filter (reference §5.1): whitelisted namespaces pass; otherwise a
 * STAGED_ROLLOUT fraction passes namespaces by hash; with neither key set, everyone passes.
 */
export function allowedForNamespace(config: Pick<ExecutorCommonConfig, 'NAMESPACE_WHITELIST' | 'STAGED_ROLLOUT'>, namespace: string): boolean {
  if (config.NAMESPACE_WHITELIST?.includes(namespace)) return true;
  if (config.STAGED_ROLLOUT !== undefined) {
    const digest = createHash('sha256').update(namespace).digest('hex');
    return parseInt(digest.slice(-2), 16) < 256 * config.STAGED_ROLLOUT;
  }
  return config.NAMESPACE_WHITELIST === undefined;
}
