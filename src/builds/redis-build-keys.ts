import { slashJoin } from '../orchestrator/orchestrator.js';

/**
 * Where the Redis build store keeps things. `P` is ORCHESTRATOR_PREFIX, joined as Quay joins it
 * (`buildman/production/` → `buildman/production/build/<id>`; empty → `build/<id>`).
 *
 * | key | type | content | TTL |
 * |---|---|---|---|
 * | `P build/<id>` | hash | one field per record property, each value JSON; `~index` = its index member | recordRetentionSeconds, if set |
 * | `P build_index` | zset | member `<16-digit sequence>:<id>`, score createdAt | – |
 * | `P build_index/seq` | string | counter that orders builds created in the same millisecond | – |
 * | `builds/<id>/logs` | list | Quay's own key, unprefixed: one JSON log entry per element | logRetentionSeconds (7 d) |
 * | `P build_logs/<id>` | channel | `{"start":i,"entries":[…]}` per flushed batch | – |
 * | `P build_context/<id>` | list | the uploaded archive, in binary chunks of up to 1 MiB | contextRetentionSeconds (1 d) |
 * | `P build_context/<id>/upload/<nonce>` | list | an upload in progress, renamed onto the above when complete | same |
 */
export interface RedisBuildKeys {
  record(id: string): string;
  /** Prefix of every record key, for the list script that walks the index. */
  readonly recordPrefix: string;
  readonly index: string;
  readonly sequence: string;
  logs(id: string): string;
  logChannel(id: string): string;
  context(id: string): string;
  contextUpload(id: string, nonce: string): string;
}

export function redisBuildKeys(prefix: string): RedisBuildKeys {
  const p = (name: string) => slashJoin(prefix, name);
  const recordPrefix = `${p('build')}/`;
  const index = p('build_index');
  return {
    record: (id) => `${recordPrefix}${id}`,
    recordPrefix,
    index,
    sequence: `${index}/seq`,
    // Exactly Quay's key (data/buildlogs.py), so Quay's API and log archiver read our logs.
    logs: (id) => `builds/${id}/logs`,
    logChannel: (id) => `${p('build_logs')}/${id}`,
    context: (id) => `${p('build_context')}/${id}`,
    contextUpload: (id, nonce) => `${p('build_context')}/${id}/upload/${nonce}`,
  };
}
