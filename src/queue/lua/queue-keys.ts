import { slashJoin } from '../../orchestrator/orchestrator.js';

/**
 * Where a RedisQueue keeps its state. Everything lives under `<prefix>/queue/<queueName>/` (the prefix
 * slash-joined as Quay joins it):
 *
 * - `item/<id>`      hash: queue (the repository), body, retries, state (stateId), after
 *                    (available_after, epoch ms), leased (0/1), expires (processing_expires, epoch ms),
 *                    seq (insertion order), at (which index below holds it: run | ready | wait | none)
 * - `seq`            counter giving each item its insertion number (Quay's "lowest id first")
 * - `ready`          zset id → seq: every item claimable now, whatever its repository is doing
 * - `ready/<repo>`   zset id → seq: the same, one per repository (item queueName)
 * - `heads`          zset repo → seq of its oldest ready item, only for repositories with nothing running:
 *                    a claim takes its first entry
 * - `running`        zset id → lease expiry: leased items whose lease has not lapsed
 * - `delayed`        zset id → available_after: items waiting out a retry delay
 * - `busy`           hash repo → number of running items (one, unless a lapsed lease was revived by extend)
 *
 * `running` and `delayed` together are the "next available at" index: their scores are the moments an
 * item becomes claimable (or frees its repository) by itself.
 * Events go to the channel `<prefix>/queue_events`.
 *
 * Scripts build the per-item and per-repository keys from the base, so this layout needs one Redis
 * node (as Quay's orchestrator does), not a cluster.
 */
export interface QueueKeys {
  /** Prefix of the per-item and per-repository keys. */
  base: string;
  /** The scripts' KEYS, in the order the Lua prelude names them. */
  indexKeys: string[];
  channel: string;
}

export function queueKeys(prefix: string, queueName: string): QueueKeys {
  // Joined as every other layout joins ORCHESTRATOR_PREFIX: `buildman/production` and
  // `buildman/production/` both give `buildman/production/queue/...`.
  const base = slashJoin(prefix, 'queue', queueName) + '/';
  return {
    base,
    indexKeys: ['seq', 'ready', 'heads', 'running', 'delayed', 'busy'].map((k) => base + k),
    channel: slashJoin(prefix, 'queue_events'),
  };
}
