import * as grpc from '@grpc/grpc-js';
import type { BuildPack } from '../../proto/gen/buildman.js';
import type { PullMetadata, WorkerPhase } from '../../machines/job-events.js';
import type { LogEntry } from '../builds/build-record.js';
import type { BuildStore } from '../builds/build-store.js';
import type { BuildmanConfig } from '../config/config-types.js';
import { grpcError, type WorkerGateway } from '../grpc/build-manager-service.js';
import type { JobRegistry } from '../orchestrator/job-registry.js';
import type { BuildTokens, BuildTokenType } from '../tokens/build-tokens.js';
import type { BuildQueue } from '../queue/build-queue.js';
import { JOB_LEASE_SECONDS, type ActorHost } from './actor-host.js';
import { phaseOfStateString } from './build-phase.js';

/** Log lines closer together than this refresh the job key once. */
const LOG_REFRESH_EVERY_MS = 1000;

/** How often a heartbeat also moves the build's queue lease. */
const LEASE_EXTENSION_EVERY_MS = 60_000;

/** How long after a build ends its worker's trailing log lines are still kept. */
const LATE_LOG_GRACE_MS = 30_000;

/** Connects verified worker RPCs to the build actors and stores. */
export class ManagerWorkerGateway implements WorkerGateway {
  constructor(
    private readonly deps: {
      config: BuildmanConfig;
      host: ActorHost;
      store: BuildStore;
      jobs: JobRegistry;
      queue: BuildQueue;
      tokens: BuildTokens;
      now?: () => number;
    },
  ) {}

  /**
   * Log lines keep a job alive too (Quay), but a burst of them need not rewrite the job key (and
   * publish the write to every instance) once per line: within this long of the last refresh the
   * job is taken as alive without touching Redis. Heartbeat RPCs always refresh.
   */
  async touchFromLog(buildId: string): Promise<boolean> {
    const last = this.refreshedAt.get(buildId);
    if (last !== undefined && this.now() - last < LOG_REFRESH_EVERY_MS) return true;
    return this.heartbeat(buildId);
  }

  /** When this instance last refreshed each live build's job key. */
  private readonly refreshedAt = new Map<string, number>();

  /** When this instance last moved each build's queue lease. */
  private readonly leaseExtendedAt = new Map<string, number>();

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  jobKey(buildId: string): string {
    return this.deps.jobs.jobKey(buildId);
  }

  verify(token: string, type: BuildTokenType) {
    return this.deps.tokens.verify(token, type);
  }

  async register(buildId: string): Promise<BuildPack> {
    const { host, store, tokens, jobs, config } = this.deps;
    const record = await store.get(buildId);
    const status = record && (await jobs.get(buildId)) ? await host.deliver(buildId, { type: 'worker.registered', at: this.now() }) : undefined;
    if (!record || !status || !status.state.startsWith('running')) {
      throw grpcError(grpc.status.INTERNAL, 'Build manager unable to start job');
    }
    const jobJwt = await tokens.mint('build_job_token', buildId, jobs.jobKey(buildId), config.manager.MACHINE_MAX_TIME);
    const pack: BuildPack = {
      jobJwt,
      context: record.context,
      dockerfilePath: record.dockerfilePath,
      repository: record.repository,
      registry: config.SERVER_HOSTNAME ?? '',
      pullToken: '',
      pushToken: '',
      tagNames: record.tags,
      baseImage: { username: record.pullCredentials?.username ?? '', password: record.pullCredentials?.password ?? '' },
    };
    const { source } = record;
    if (source.kind === 'git') pack.gitPackage = { url: source.url, sha: source.sha, privateKey: '' };
    else if (source.kind === 'url') pack.packageUrl = source.url;
    else pack.packageUrl = `${config.server.publicUrl}/api/v1/builds/${buildId}/context?token=${encodeURIComponent(jobJwt)}`;
    return pack;
  }

  /** A heartbeat needs no actor: the job key's TTL is the liveness (Quay's design), and any instance can touch it. */
  async heartbeat(buildId: string): Promise<boolean> {
    const job = await this.deps.jobs.heartbeat(buildId);
    if (!job) {
      this.leaseExtendedAt.delete(buildId);
      this.refreshedAt.delete(buildId);
      return false;
    }
    this.refreshedAt.set(buildId, this.now());
    // The queue lease moves at most once a minute (Quay's minimum extension), so most heartbeats skip it.
    const now = this.now();
    if (now - (this.leaseExtendedAt.get(buildId) ?? 0) >= LEASE_EXTENSION_EVERY_MS) {
      this.leaseExtendedAt.set(buildId, now);
      await this.deps.queue.extend({ id: job.job_queue_item.id }, JOB_LEASE_SECONDS, 60);
    }
    return true;
  }

  async setPhase(buildId: string, phase: WorkerPhase, pullMetadata?: PullMetadata): Promise<boolean> {
    if (!(await this.deps.jobs.get(buildId))) return false;
    const status = await this.deps.host.deliver(buildId, { type: 'worker.phase', at: this.now(), phase, pullMetadata });
    // Success means the build is now in that phase (Quay counts an unchanged phase as success).
    return !!status && (status.done || status.state.startsWith('running.')) && phaseOfStateString(status.state) === phase;
  }

  async appendLog(buildId: string, entry: LogEntry, jobAlive: boolean): Promise<boolean> {
    if (!jobAlive) {
      // A worker's last lines (its error, say) may trail its final SetPhase on the other stream.
      const record = await this.deps.store.get(buildId);
      if (!record || this.now() - record.updatedAt > LATE_LOG_GRACE_MS) return false;
    }
    await this.deps.store.appendLogs(buildId, [entry]);
    return true;
  }

  /**
   * The tag a worker may use as a cache source: the first of this build's tags that an earlier
   * completed build of the repository produced, else that repository's most recent built tag.
   */
  async cachedTag(buildId: string): Promise<string> {
    const record = await this.deps.store.get(buildId);
    if (!record) return '';
    // The most recent builds are where a cache source is; looking further back costs more than it gives.
    const earlier = (await this.deps.store.list({ limit: 1000 })).filter(
      (b) => b.repository === record.repository && b.phase === 'complete' && b.id !== buildId,
    );
    const built = new Set(earlier.flatMap((b) => b.tags));
    return record.tags.find((t) => built.has(t)) ?? earlier[0]?.tags[0] ?? '';
  }
}
