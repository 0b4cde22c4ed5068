import { EventEmitter } from 'node:events';
import { createActor, fromPromise, type Actor } from 'xstate';
import { buildJobMachine, type BuildJobContext, type ExecutorChoice } from '../../machines/build-job-machine.js';
import { executorMachine, type ExecutorInput, type StartWorkerOutput } from '../../machines/executor-machine.js';
import type { JobEvent, PullMetadata, WorkerPhase } from '../../machines/job-events.js';
import type { BuildRecord, BuildPhase, LogEntry } from '../builds/build-record.js';
import type { BuildStore } from '../builds/build-store.js';
import type { BuildmanConfig } from '../config/config-types.js';
import { PermanentError } from '../errors/buildman-error.js';
import type { BuildExecutor } from '../executors/build-executor.js';
import { allowedForNamespace } from '../executors/namespace-filter.js';
import type { JobRegistry } from '../orchestrator/job-registry.js';
import type { BuildQueue, QueueItem } from '../queue/build-queue.js';
import type { BuildTokens } from '../tokens/build-tokens.js';
import type { Logger } from '../util/logger.js';
import { phaseOfState, quayDatetime, stateString } from './build-phase.js';

export type JobActor = Actor<typeof buildJobMachine>;

export interface ActorHostDeps {
  config: BuildmanConfig;
  store: BuildStore;
  queue: BuildQueue;
  jobs: JobRegistry;
  tokens: BuildTokens;
  executors: ReadonlyMap<string, BuildExecutor>;
  logger: Logger;
  now?: () => number;
}

/** Seconds a claim leases its queue item before the worker is started (Quay: 500 + 30). */
export const CLAIM_LEASE_SECONDS = 530;
/** Each heartbeat moves the queue lease to now + this (Quay's JOB_TIMEOUT_SECONDS), written at most once a minute. */
export const JOB_LEASE_SECONDS = 300;

/**
 * Owns one build-job actor per live build. It turns RPCs, expiries and API calls into events for
 * the right actor, carries out the side effects the actors ask for (start and stop workers,
 * requeue, finish) and mirrors each actor's state into the build record and log.
 */
export class ActorHost {
  private readonly actors = new Map<string, JobActor>();
  /** The queue item a build's current attempt claimed. */
  private readonly claims = new Map<string, QueueItem>();
  /** Attempts whose worker was stopped: a start that finishes late is undone at once. */
  private readonly stoppedAttempts = new Set<string>();
  private readonly lastPhase = new Map<string, BuildPhase>();
  /** Per-build promise chains, so a build's effects and record writes happen in order. */
  private readonly chains = new Map<string, Promise<void>>();
  private readonly finals = new EventEmitter().setMaxListeners(0);
  private readonly machine;
  private readonly log: Logger;

  constructor(private readonly deps: ActorHostDeps) {
    this.log = deps.logger.child({ component: 'actor-host' });
    this.machine = buildJobMachine.provide({
      actors: {
        executor: executorMachine.provide({
          actors: { startWorker: fromPromise<StartWorkerOutput, ExecutorInput>(({ input }) => this.startWorker(input)) },
        }),
      },
      actions: {
        startDeadline: ({ context }, { seconds }) =>
          this.effect(context.buildId, 'startDeadline', async () => {
            await deps.jobs.update(context.buildId, { executor_name: context.executorName, execution_id: context.executionId }, seconds);
            await this.extendLease(context.buildId, seconds + 60);
          }),
        stopWorker: ({ context }, params) => this.stopWorker(context.buildId, params),
        requeue: ({ context }, { retryAfterSeconds }) =>
          this.effect(context.buildId, 'requeue', () => this.requeue(context.buildId, retryAfterSeconds)),
        finish: ({ context }, { outcome }) => this.effect(context.buildId, 'finish', () => this.finish(context, outcome)),
        countFallback: ({ context }, { executorName, reason }) =>
          this.log.warn({ buildId: context.buildId, executor: executorName, reason }, 'executor failed; falling back'),
      },
    });
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** How each configured executor applies to a build of this namespace. */
  executorChoices(namespace: string): ExecutorChoice[] {
    return this.deps.config.manager.EXECUTORS.map((e) => ({
      name: e.NAME,
      minimumRetryThreshold: e.MINIMUM_RETRY_THRESHOLD,
      allowed: allowedForNamespace(e, namespace),
      setupTime: e.SETUP_TIME ?? 500,
    }));
  }

  /** Starts the actor of a new build, in `queued`. */
  adopt(record: BuildRecord): JobActor {
    const actor = createActor(this.machine, {
      id: record.id,
      input: {
        buildId: record.id,
        executors: this.executorChoices(record.repository.split('/')[0]),
        retryBackoffSeconds: this.deps.config.manager.retryBackoffSeconds,
        createdAt: record.createdAt,
      },
    });
    this.actors.set(record.id, actor);
    this.lastPhase.set(record.id, record.phase);
    actor.subscribe({
      next: (snapshot) => this.mirror(record.id, snapshot),
      error: (err) => this.log.error({ buildId: record.id, err }, 'build actor failed'),
    });
    actor.start();
    return actor;
  }

  get(buildId: string): JobActor | undefined {
    return this.actors.get(buildId);
  }

  get liveCount(): number {
    return this.actors.size;
  }

  /** Sends an event to a build's actor; false when the build has no live actor. */
  send(buildId: string, event: JobEvent): boolean {
    const actor = this.actors.get(buildId);
    if (!actor) return false;
    actor.send(event);
    return true;
  }

  /** Resolves once every effect and record write queued for this build so far has run. */
  settled(buildId: string): Promise<void> {
    return this.chains.get(buildId) ?? Promise.resolve();
  }

  /** Calls `listener` once the build reaches a final state and its record says so. */
  onFinal(buildId: string, listener: () => void): () => void {
    this.finals.once(buildId, listener);
    return () => this.finals.off(buildId, listener);
  }

  /** The scheduler claimed this item: create the job key and tell the actor. */
  async claimed(item: QueueItem): Promise<void> {
    let buildId: string;
    try {
      buildId = (JSON.parse(item.body) as { build_uuid: string }).build_uuid;
    } catch {
      this.log.error({ queueItem: item.id }, 'queue item body is not JSON; dropping it');
      await this.deps.queue.complete(item);
      return;
    }
    const actor = this.actors.get(buildId);
    if (!actor || actor.getSnapshot().status === 'done') {
      // A build that ended (or is unknown here) must not keep a queue item.
      await this.deps.queue.complete(item);
      return;
    }
    if (!actor.getSnapshot().matches('queued')) {
      // Its lease lapsed while the build runs: take the lease back rather than run it twice.
      this.claims.set(buildId, item);
      await this.deps.queue.extend(item, JOB_LEASE_SECONDS, 0);
      return;
    }
    const created = await this.deps.jobs.create(
      buildId,
      { id: item.id, body: item.body, retries_remaining: item.retriesRemaining },
      this.deps.config.manager.JOB_REGISTRATION_TIMEOUT,
    );
    if (!created) {
      await this.deps.queue.incomplete(item, { retryAfterSeconds: 5, restoreRetry: true });
      return;
    }
    this.claims.set(buildId, item);
    actor.send({ type: 'job.claimed', at: this.now(), retriesRemaining: item.retriesRemaining });
  }

  // ---- side effects the machine asks for ----

  private async startWorker(input: ExecutorInput): Promise<StartWorkerOutput> {
    const executor = this.deps.executors.get(input.executorName);
    if (!executor) throw new PermanentError(`executor ${input.executorName} is not configured`, 'UNKNOWN_EXECUTOR');
    const { manager } = this.deps.config;
    const token = await this.deps.tokens.mint(
      'build_job_registration',
      input.buildId,
      this.deps.jobs.jobKey(input.buildId),
      manager.JOB_REGISTRATION_TIMEOUT + 30,
    );
    const executionId = await executor.start({ buildId: input.buildId, attempt: input.attempt, token });
    this.log.info({ buildId: input.buildId, attempt: input.attempt, executor: executor.name, executionId }, 'worker started');
    if (this.stoppedAttempts.has(attemptKey(input.buildId, input.attempt))) {
      // The build moved on while the control plane was answering: undo the late start.
      await executor.stop({ buildId: input.buildId, attempt: input.attempt, executionId });
    }
    return { executionId, at: this.now() };
  }

  private stopWorker(buildId: string, params: { executorName: string; attempt: number; executionId?: string }): void {
    this.stoppedAttempts.add(attemptKey(buildId, params.attempt));
    const executor = this.deps.executors.get(params.executorName);
    if (!executor) return;
    // Not chained behind the build's other effects: stopping must not wait for a slow requeue.
    void retry(() => executor.stop({ buildId, ...params }), 3).catch((err) =>
      this.log.error({ buildId, executor: params.executorName, attempt: params.attempt, err }, 'could not stop worker'),
    );
  }

  private async requeue(buildId: string, retryAfterSeconds: number): Promise<void> {
    const item = this.claims.get(buildId);
    this.claims.delete(buildId);
    await this.deps.jobs.remove(buildId);
    if (item) await this.deps.queue.incomplete(item, { retryAfterSeconds, restoreRetry: false });
    this.log.info({ buildId, retryAfterSeconds }, 'build requeued after an infrastructure failure');
  }

  private async finish(context: BuildJobContext, outcome: string): Promise<void> {
    const { buildId } = context;
    const item = this.claims.get(buildId);
    this.claims.delete(buildId);
    await this.deps.jobs.remove(buildId);
    const queueItemId = item?.id ?? (await this.deps.store.get(buildId))?.queueItemId;
    if (queueItemId) {
      if (outcome === 'cancelled' || outcome === 'expired') await this.deps.queue.cancel(queueItemId);
      else await this.deps.queue.complete({ id: queueItemId });
    }
    await this.deps.store.deleteContext(buildId);
    this.log.info({ buildId, outcome, attempt: context.attempt, reason: context.reason }, 'build finished');
  }

  // ---- mirroring actor state into the record and the log ----

  private mirror(buildId: string, snapshot: ReturnType<JobActor['getSnapshot']>): void {
    const phase = phaseOfState(snapshot.value);
    const { context } = snapshot;
    const done = snapshot.status === 'done';
    const phaseChanged = this.lastPhase.get(buildId) !== phase;
    this.lastPhase.set(buildId, phase);
    const at = this.now();
    this.chain(buildId, async () => {
      if (phaseChanged) await this.deps.store.appendLogs(buildId, [phaseEntry(phase, at, phase === 'pulling' ? context.pullMetadata : undefined)]);
      await this.deps.store.update(buildId, {
        phase,
        state: stateString(snapshot.value),
        attempt: context.attempt,
        executor: context.executorName,
        executionId: context.executionId,
        reason: context.reason,
      });
      if (done) {
        this.actors.delete(buildId);
        this.lastPhase.delete(buildId);
        this.finals.emit(buildId);
      }
    });
  }

  private effect(buildId: string, name: string, run: () => Promise<unknown>): void {
    this.chain(buildId, async () => {
      try {
        await run();
      } catch (err) {
        this.log.error({ buildId, effect: name, err }, 'build side effect failed');
      }
    });
  }

  private chain(buildId: string, step: () => Promise<void>): void {
    const next = (this.chains.get(buildId) ?? Promise.resolve()).then(step).catch((err) => {
      this.log.error({ buildId, err }, 'build bookkeeping failed');
    });
    this.chains.set(buildId, next);
    void next.then(() => {
      if (this.chains.get(buildId) === next) this.chains.delete(buildId);
    });
  }

  /** Accepts a SetPhase. True when the build is now in that phase (Quay: unchanged phase counts as success). */
  setPhase(buildId: string, phase: WorkerPhase, pullMetadata: PullMetadata | undefined): boolean {
    const actor = this.actors.get(buildId);
    if (!actor || !actor.getSnapshot().matches('running')) return false;
    actor.send({ type: 'worker.phase', at: this.now(), phase, pullMetadata });
    return phaseOfState(actor.getSnapshot().value) === phase;
  }

  /** Keeps the build's queue lease ahead of its deadline, so the item is not claimed again while it runs. */
  async extendLease(buildId: string, seconds = JOB_LEASE_SECONDS): Promise<void> {
    const item = this.claims.get(buildId);
    if (item) await this.deps.queue.extend(item, seconds, 60);
  }

  /** Whether the build's worker may be running now (registration pending or running). */
  isActive(buildId: string): boolean {
    const snap = this.actors.get(buildId)?.getSnapshot();
    return !!snap && (snap.matches('waitingForRegistration') || snap.matches('running'));
  }

  /** Appends worker output to the build's log. */
  async appendLog(buildId: string, entry: LogEntry): Promise<void> {
    await this.deps.store.appendLogs(buildId, [entry]);
  }

  async stopAll(): Promise<void> {
    for (const actor of this.actors.values()) actor.stop();
    await Promise.all([...this.chains.values()]);
  }
}

function attemptKey(buildId: string, attempt: number): string {
  return `${buildId}#${attempt}`;
}

function phaseEntry(phase: BuildPhase, at: number, pullMetadata?: PullMetadata): LogEntry {
  return { message: phase, type: 'phase', data: { ...(pullMetadata ?? {}), datetime: quayDatetime(at) } };
}

async function retry<T>(fn: () => Promise<T>, attempts: number): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      const retryable = (err as { retryable?: boolean }).retryable !== false;
      if (i >= attempts || !retryable) throw err;
      await new Promise((r) => setTimeout(r, 250 * 2 ** i));
    }
  }
}
