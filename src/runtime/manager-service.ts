import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import { REPOSITORY_PATTERN, TAG_PATTERN } from '../api/api-schemas.js';
import type { BuildService, BuildView } from '../api/build-service.js';
import { TERMINAL_PHASES, type BuildPhase, type BuildRecord, type BuildRequest, type LogEntry } from '../builds/build-record.js';
import type { BuildStore } from '../builds/build-store.js';
import type { BuildmanConfig } from '../config/config-types.js';
import { RequestError, TokenError } from '../errors/buildman-error.js';
import type { BuildQueue } from '../queue/build-queue.js';
import type { BuildTokens } from '../tokens/build-tokens.js';
import type { BuildMetrics } from '../metrics/build-metrics.js';
import type { ActorStore, HistoryEntry } from '../persistence/actor-store.js';
import type { ActorHost } from './actor-host.js';

// The same rules the HTTP API checks, for callers that come in another way.
const REPOSITORY = new RegExp(REPOSITORY_PATTERN);
const TAG = new RegExp(TAG_PATTERN);

/** The manager as the HTTP API and CLI see it. */
export class ManagerService implements BuildService {
  constructor(
    private readonly deps: {
      config: BuildmanConfig;
      store: BuildStore;
      queue: BuildQueue;
      host: ActorHost;
      tokens: BuildTokens;
      actorStore: ActorStore;
      metrics: BuildMetrics;
      now?: () => number;
    },
  ) {}

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  async submit(req: BuildRequest, context?: Readable): Promise<BuildView> {
    validateRequest(req, context !== undefined);
    const id = randomUUID();
    const { store, queue, host, config } = this.deps;
    let source = req.source;
    if (source.kind === 'upload') {
      if (!context) throw new RequestError('an upload build needs a context archive in the request body', 400, 'body');
      source = { kind: 'upload', bytes: await store.saveContext(id, context, config.server.maxContextBytes) };
    }
    const at = this.now();
    const record: BuildRecord = { ...req, source, id, phase: 'waiting', state: 'queued', createdAt: at, updatedAt: at, attempt: 0 };
    await store.create(record);
    await host.adopt(record);
    const [namespace, name] = req.repository.split('/');
    // Pull credentials stay in the build record: the queue and job keys never carry a secret.
    const queueItemId = await queue.put(`dockerfilebuild/${namespace}/${name}/`, JSON.stringify({ build_uuid: id, pull_credentials: null }), {
      retries: config.manager.buildRetries,
    });
    await store.update(id, { queueItemId });
    return this.get(id);
  }

  async get(id: string): Promise<BuildView> {
    const record = await this.deps.store.get(id);
    if (!record) throw new RequestError(`no build with id ${id}`, 404, 'id');
    return toView(record);
  }

  async list(opts?: { limit?: number }): Promise<BuildView[]> {
    return (await this.deps.store.list(opts)).map(toView);
  }

  async logs(id: string, start: number): Promise<{ start: number; total: number; logs: LogEntry[] }> {
    await this.get(id);
    const { total, logs } = await this.deps.store.readLogs(id, start);
    return { start, total, logs };
  }

  async followLogs(
    id: string,
    start: number,
    onEntry: (entry: LogEntry, index: number) => void,
    onEnd: (build: BuildView) => void,
  ): Promise<() => void> {
    await this.get(id);
    const { store } = this.deps;
    let next = start;
    let stopped = false;
    let replaying = true;
    // Live entries wait here until the backlog is out, so nothing is lost or repeated.
    const pending: Array<[LogEntry, number]> = [];
    const stop = () => {
      stopped = true;
      unwatch();
    };
    let ending = false;
    const finish = async () => {
      if (ending) return;
      ending = true;
      // The final phase entry comes just before the record says final; wait for the record.
      let build = await this.get(id);
      for (let i = 0; !build.final && i < 100 && !stopped; i++) {
        await new Promise((r) => setTimeout(r, 20));
        build = await this.get(id);
      }
      if (stopped) return;
      const from = next;
      const rest = await store.readLogs(id, from);
      rest.logs.forEach((entry, i) => deliver(entry, from + i));
      if (stopped) return;
      stop();
      onEnd(build);
    };
    const deliver = (entry: LogEntry, index: number) => {
      if (stopped || index < next) return;
      next = index + 1;
      onEntry(entry, index);
      if (entry.type === 'phase' && TERMINAL_PHASES.has(entry.message as BuildPhase)) void finish();
    };
    const unwatch = store.watchLogs(id, (entry, index) => (replaying ? pending.push([entry, index]) : deliver(entry, index)));
    const backlog = await store.readLogs(id, start);
    backlog.logs.forEach((entry, i) => deliver(entry, start + i));
    replaying = false;
    for (const [entry, index] of pending) deliver(entry, index);
    if ((await this.get(id)).final) void finish();
    return stop;
  }

  async cancel(id: string): Promise<BuildView> {
    const before = await this.get(id);
    if (before.final) throw new RequestError(`build ${id} already ended (${before.phase}); nothing to cancel`, 409, 'id');
    const status = await this.deps.host.deliver(id, { type: 'job.cancel', at: this.now(), reason: 'cancelled by request' });
    if (!status || status.state !== 'cancelled') {
      const now = await this.get(id);
      if (now.final) throw new RequestError(`build ${id} already ended (${now.phase}); nothing to cancel`, 409, 'id');
      throw new RequestError(`build ${id} is ${now.phase} and can no longer be cancelled`, 409, 'id');
    }
    return this.get(id);
  }

  async openContext(id: string, jobToken: string): Promise<Readable> {
    try {
      const ctx = await this.deps.tokens.verify(jobToken, 'build_job_token');
      if (ctx.build_id !== id) throw new TokenError('token belongs to another build');
    } catch (err) {
      if (err instanceof TokenError) throw new RequestError(`Invalid build token: ${err.message}`, 401, 'token');
      throw err;
    }
    const stream = await this.deps.store.openContext(id);
    if (!stream) throw new RequestError(`build ${id} has no uploaded context`, 404, 'id');
    return stream;
  }

  async history(id: string): Promise<HistoryEntry[]> {
    await this.get(id);
    return this.deps.actorStore.history(id);
  }

  async metrics(): Promise<{ contentType: string; body: string }> {
    const { metrics } = this.deps;
    return { contentType: metrics.contentType, body: await metrics.metrics() };
  }

  async health(): Promise<{ ok: boolean; details: Record<string, unknown> }> {
    const queue = await this.deps.queue.stats();
    return { ok: true, details: { liveBuilds: this.deps.host.liveCount, queue } };
  }
}

function toView(record: BuildRecord): BuildView {
  const { pullCredentials: _secret, ...rest } = record;
  return { ...rest, final: TERMINAL_PHASES.has(record.phase) };
}

function validateRequest(req: BuildRequest, hasBody: boolean): void {
  if (typeof req.repository !== 'string' || !REPOSITORY.test(req.repository)) {
    throw new RequestError('repository must be namespace/name in lowercase letters, digits, ".", "_" or "-"', 400, 'repository');
  }
  if (!Array.isArray(req.tags) || req.tags.length === 0 || !req.tags.every((t) => typeof t === 'string' && TAG.test(t))) {
    throw new RequestError('tags must be a non-empty list of valid tag names ([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})', 400, 'tags');
  }
  if (typeof req.dockerfilePath !== 'string' || req.dockerfilePath.split('/').includes('..')) {
    throw new RequestError('dockerfile_path must be a path inside the context', 400, 'dockerfile_path');
  }
  if (typeof req.context !== 'string' || req.context.split('/').includes('..')) {
    throw new RequestError('context must be a sub-directory of the source', 400, 'context');
  }
  const { source } = req;
  if (source.kind === 'url' && !/^(https?|file):\/\//.test(source.url)) {
    throw new RequestError('archive_url must be an http, https or file URL', 400, 'archive_url');
  }
  if (source.kind === 'git' && (!source.url || !source.sha)) {
    throw new RequestError('git needs both url and sha', 400, 'git');
  }
  if (source.kind !== 'upload' && hasBody) {
    throw new RequestError('send either a context archive or archive_url/git, not both', 400, 'body');
  }
}
