import { KeyEvent, KeyExistsError, KeyNotFoundError, slashJoin, type Orchestrator } from './orchestrator.js';

/** The job record kept under `<prefix>building/<uuid>` (reference §2.2). */
export interface JobRecord {
  job_queue_item: { id: string; body: string; retries_remaining: number };
  /** Epoch seconds after which heartbeats stop extending the job. */
  max_expiration: number;
  last_heartbeat: string | null;
  created_at: number;
  executor_name?: string;
  execution_id?: string;
  /** Ours: the build attempt whose worker this job is (so the orphan sweep can tell old attempts' workers). */
  attempt?: number;
}

/**
 * Running jobs in the orchestrator, in Quay's key layout. A job key exists from the claim to the
 * end of the attempt; its TTL is the liveness deadline, and its expiry comes back as an event.
 */
export class JobRegistry {
  readonly buildingPrefix: string;

  constructor(
    private readonly orchestrator: Orchestrator,
    prefix: string,
    private readonly opts: { machineMaxTime: number; heartbeatTtlSeconds: number; now?: () => number },
  ) {
    this.buildingPrefix = slashJoin(prefix, 'building') + '/';
  }

  jobKey(buildId: string): string {
    return this.buildingPrefix + buildId;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Creates the job key at claim time. False when one already exists (another attempt still holds it). */
  async create(buildId: string, item: JobRecord['job_queue_item'], ttlSeconds: number): Promise<boolean> {
    const nowS = this.now() / 1000;
    const record: JobRecord = {
      job_queue_item: item,
      max_expiration: Math.floor(nowS + this.opts.machineMaxTime),
      last_heartbeat: null,
      created_at: nowS,
    };
    try {
      await this.orchestrator.setKey(this.jobKey(buildId), JSON.stringify(record), { expirationSeconds: ttlSeconds });
      return true;
    } catch (err) {
      if (err instanceof KeyExistsError) return false;
      throw err;
    }
  }

  async get(buildId: string): Promise<JobRecord | undefined> {
    try {
      return JSON.parse(await this.orchestrator.getKey(this.jobKey(buildId))) as JobRecord;
    } catch (err) {
      if (err instanceof KeyNotFoundError) return undefined;
      throw err;
    }
  }

  /** Rewrites the job with new fields and a new TTL. False when the job is gone (expired or finished). */
  async update(buildId: string, patch: Partial<JobRecord>, ttlSeconds: number): Promise<boolean> {
    const job = await this.get(buildId);
    if (!job) return false;
    await this.orchestrator.setKey(this.jobKey(buildId), JSON.stringify({ ...job, ...patch }), {
      overwrite: true,
      expirationSeconds: ttlSeconds,
    });
    return true;
  }

  /**
   * A heartbeat (or a log line): the job lives another TTL, but never past max_expiration, after
   * which the TTL collapses to 1 s so the job expires (reference §2.4). Two Redis round trips: a
   * read and one atomic write. Returns the job, or undefined when it is gone.
   */
  async heartbeat(buildId: string): Promise<JobRecord | undefined> {
    const job = await this.get(buildId);
    if (!job) return undefined;
    const nowMs = this.now();
    const left = job.max_expiration - nowMs / 1000;
    const ttl = Math.min(this.opts.heartbeatTtlSeconds, Math.max(1, left));
    const next = { ...job, last_heartbeat: new Date(nowMs).toISOString() };
    // Overwrite only: a job that ended between the read and this write is not brought back.
    await this.orchestrator.setKey(this.jobKey(buildId), JSON.stringify(next), { overwrite: true, expirationSeconds: ttl });
    return next;
  }

  /** Removes the job key; harmless when already gone. */
  async remove(buildId: string): Promise<void> {
    try {
      await this.orchestrator.deleteKey(this.jobKey(buildId));
    } catch (err) {
      if (!(err instanceof KeyNotFoundError)) throw err;
    }
  }

  /** Jobs that hold a worker slot right now. */
  async count(): Promise<number> {
    return (await this.orchestrator.getPrefixedKeys(this.buildingPrefix)).size;
  }

  /** Calls `callback(buildId)` when a job's liveness deadline passes. */
  onExpired(callback: (buildId: string) => void): () => void {
    return this.orchestrator.onKeyChange(this.buildingPrefix, (change) => {
      if (change.event === KeyEvent.EXPIRE) callback(change.key.slice(this.buildingPrefix.length));
    });
  }

  /** Calls `callback` when a job key goes away for any reason (a worker slot was freed). */
  onReleased(callback: () => void): () => void {
    return this.orchestrator.onKeyChange(this.buildingPrefix, (change) => {
      if (change.event === KeyEvent.DELETE || change.event === KeyEvent.EXPIRE) callback();
    });
  }
}
