import { createActor, fromPromise, type Actor, type InspectionEvent } from 'xstate';
import { BUILD_JOB_MACHINE_VERSION, buildJobMachine, type BuildJobContext, type BuildJobInput, type ExecutorChoice } from '../../machines/build-job-machine.js';
import { executorMachine, type ExecutorInput, type StartWorkerOutput } from '../../machines/executor-machine.js';
import type { JobEvent, PullMetadata } from '../../machines/job-events.js';
import type { BuildPhase, BuildRecord, LogEntry } from '../builds/build-record.js';
import type { BuildStore } from '../builds/build-store.js';
import type { ActorStatus, Coordinator } from '../cluster/coordinator.js';
import type { BuildmanConfig } from '../config/config-types.js';
import { PermanentError } from '../errors/buildman-error.js';
import type { BuildExecutor } from '../executors/build-executor.js';
import { allowedForNamespace } from '../executors/namespace-filter.js';
import type { ActorInspector } from '../inspect/actor-inspector.js';
import type { JobRegistry } from '../orchestrator/job-registry.js';
import { serializableEvent, type ActorStore, type HistoryEntry } from '../persistence/actor-store.js';
import type { BuildQueue, QueueItem } from '../queue/build-queue.js';
import type { BuildMetrics } from '../metrics/build-metrics.js';
import type { BuildTokens } from '../tokens/build-tokens.js';
import type { Logger } from '../util/logger.js';
import { phaseOfState, quayDatetime, stateString } from './build-phase.js';

export type JobActor = Actor<typeof buildJobMachine>;
type JobSnapshot = ReturnType<JobActor['getSnapshot']>;

export interface ActorHostDeps {
  config: BuildmanConfig;
  store: BuildStore;
  queue: BuildQueue;
  jobs: JobRegistry;
  tokens: BuildTokens;
  executors: ReadonlyMap<string, BuildExecutor>;
  coordinator: Coordinator;
  actorStore: ActorStore;
  metrics: BuildMetrics;
  logger: Logger;
  now?: () => number;
  /** Live inspection (`serve --inspect`): sees every inspection event of every build's actors. */
  inspector?: ActorInspector;
}

/** Seconds a claim leases its queue item before the worker is started (Quay: 500 + 30). */
export const CLAIM_LEASE_SECONDS = 530;
/** Each heartbeat moves the queue lease to now + this (Quay's JOB_TIMEOUT_SECONDS), written at most once a minute. */
export const JOB_LEASE_SECONDS = 300;

/**
 * Owns the build-job actors of this instance. It turns RPCs, expiries and API calls into events for
 * the right actor (forwarding to the owning instance when it is not us), carries out the side
 * effects the actors ask for (start and stop workers, requeue, finish), persists each actor after
 * every change, and mirrors its state into the build record and log.
 */
export class ActorHost {
  private readonly actors = new Map<string, JobActor>();
  /** Restores in progress, so concurrent events for one build share one restore. */
  private readonly restoring = new Map<string, Promise<JobActor | undefined>>();
  /** Tries (build, attempt, executor) whose worker was stopped: a start that finishes late is undone at once. */
  private readonly stoppedAttempts = new Set<string>();
  private readonly lastPhase = new Map<string, BuildPhase>();
  /** History entries processed but not yet persisted, per build. */
  private readonly unsaved = new Map<string, HistoryEntry[]>();
  /** Per-build promise chains, so a build's effects and writes happen in order. */
  private readonly chains = new Map<string, Promise<void>>();
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
            await deps.jobs.update(context.buildId, { executor_name: context.executorName, execution_id: context.executionId, attempt: context.attempt }, seconds);
            await this.extendLease(context.buildId, seconds + 60);
          }),
        stopWorker: ({ context }, params) => this.stopWorker(context.buildId, params),
        requeue: ({ context }, { retryAfterSeconds }) =>
          this.effect(context.buildId, 'requeue', () => this.requeue(context.buildId, retryAfterSeconds)),
        finish: ({ context }, { outcome }) => this.effect(context.buildId, 'finish', () => this.finish(context, outcome)),
        countFallback: ({ context }, { executorName, reason }) => {
          deps.metrics.recordFallback(executorName);
          this.log.warn({ buildId: context.buildId, executor: executorName, reason }, 'executor failed; falling back');
        },
      },
    });
    deps.coordinator.onForwarded((buildId, event) => this.deliverHere(buildId, event));
    deps.coordinator.onOrphans((buildIds) => this.takeOver(buildIds));
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

  /** Starts the actor of a new build, in `queued`, owned by this instance and persisted. */
  async adopt(record: BuildRecord): Promise<void> {
    await this.deps.coordinator.acquire(record.id);
    this.lastPhase.set(record.id, record.phase);
    this.run(record.id, {
      input: {
        buildId: record.id,
        executors: this.executorChoices(record.repository.split('/')[0]),
        retryBackoffSeconds: this.deps.config.manager.retryBackoffSeconds,
        createdAt: record.createdAt,
      },
    });
    await this.settled(record.id);
  }

  /** Live actors on this instance. */
  get liveCount(): number {
    return this.actors.size;
  }

  /**
   * Delivers an event to the build's actor wherever it lives: here, at its owner, or, when its
   * owner is gone, here after taking it over. Undefined when the build has no actor anywhere.
   */
  async deliver(buildId: string, event: JobEvent): Promise<ActorStatus | undefined> {
    for (let attempt = 0; ; attempt++) {
      if (this.actors.has(buildId)) return this.deliverHere(buildId, event);
      const { coordinator } = this.deps;
      const owner = await coordinator.ownerOf(buildId);
      if (owner === undefined || owner === coordinator.instanceId) {
        if (owner === coordinator.instanceId || (await coordinator.acquire(buildId))) return this.deliverHere(buildId, event);
        continue; // another instance took it between the two calls: ask again
      }
      try {
        return await coordinator.forward(owner, buildId, event);
      } catch (err) {
        // The owner may have died with our event unread: look again, then take it over.
        if (attempt >= 2) throw err;
        this.log.warn({ buildId, owner, err: (err as Error).message }, 'owner did not answer; retrying');
      }
    }
  }

  /** Delivers to an actor this instance owns, restoring it from its snapshot if needed. */
  private async deliverHere(buildId: string, event: JobEvent): Promise<ActorStatus | undefined> {
    const actor = this.actors.get(buildId) ?? (await this.restore(buildId));
    if (!actor) {
      const stored = await this.deps.actorStore.load(buildId);
      const snap = stored?.snapshot as { value: JobSnapshot['value']; status: string } | undefined;
      return snap && { state: stateString(snap.value), done: snap.status === 'done' };
    }
    // A build that just ended keeps its actor until its last writes are done; it takes no more events.
    if (actor.getSnapshot().status === 'active') actor.send(event);
    const after = actor.getSnapshot();
    // Answer once the change is persisted and mirrored, as Quay answers after its DB write.
    await this.settled(buildId);
    return { state: stateString(after.value), done: after.status === 'done' };
  }

  /** Brings back the actor of a build we own from its persisted snapshot (nothing if it ended). */
  private restore(buildId: string): Promise<JobActor | undefined> {
    const running = this.restoring.get(buildId);
    if (running) return running;
    const task = (async () => {
      const stored = await this.deps.actorStore.load(buildId);
      const snapshot = stored?.snapshot as JobSnapshot | undefined;
      if (!snapshot || snapshot.status === 'done') {
        await this.deps.coordinator.release(buildId);
        return undefined;
      }
      if (stored!.machineVersion !== BUILD_JOB_MACHINE_VERSION) {
        this.log.warn({ buildId, stored: stored!.machineVersion, current: BUILD_JOB_MACHINE_VERSION }, 'restoring a snapshot from another machine version');
      }
      const record = await this.deps.store.get(buildId);
      if (record) this.lastPhase.set(buildId, record.phase);
      this.log.info({ buildId, state: stateString(snapshot.value) }, 'restored build actor');
      return this.run(buildId, { snapshot, input: snapshot.context });
    })().finally(() => this.restoring.delete(buildId));
    this.restoring.set(buildId, task);
    return task;
  }

  /** Takes over builds whose owner died. */
  private async takeOver(buildIds: string[]): Promise<void> {
    for (const buildId of buildIds) {
      if (this.actors.has(buildId)) continue;
      if (await this.deps.coordinator.acquire(buildId)) await this.restore(buildId);
    }
  }

  /** Creates, wires and starts an actor (new or restored). */
  private run(buildId: string, opts: { input: BuildJobInput; snapshot?: JobSnapshot }): JobActor {
    let self: JobActor | undefined;
    const actor = createActor(this.machine, {
      id: buildId,
      input: opts.input,
      ...(opts.snapshot ? { snapshot: opts.snapshot } : {}),
      inspect: (ev: InspectionEvent) => {
        this.deps.inspector?.inspect(buildId, ev);
        // Journal every event the build's own actor processed (children's are inside the snapshot).
        if (ev.type !== '@xstate.snapshot' || ev.actorRef !== self) return;
        // A restored actor's start is not a new event of the build.
        if (opts.snapshot && ev.event.type === 'xstate.init') return;
        const value = (ev.snapshot as JobSnapshot).value;
        const entries = this.unsaved.get(buildId) ?? [];
        entries.push({ at: this.now(), event: serializableEvent(ev.event), state: stateString(value), machineVersion: BUILD_JOB_MACHINE_VERSION });
        this.unsaved.set(buildId, entries);
      },
    });
    self = actor;
    this.actors.set(buildId, actor);
    actor.subscribe({
      next: (snapshot) => this.mirror(buildId, actor, snapshot),
      error: (err) => this.log.error({ buildId, err }, 'build actor failed'),
    });
    actor.start();
    return actor;
  }

  /** Resolves once every effect and write queued for this build so far has run. */
  settled(buildId: string): Promise<void> {
    return this.chains.get(buildId) ?? Promise.resolve();
  }

  /** The scheduler claimed this item: create the job key and tell the actor. True when the build now holds a worker slot. */
  async claimed(item: QueueItem): Promise<boolean> {
    let buildId: string;
    try {
      buildId = (JSON.parse(item.body) as { build_uuid: string }).build_uuid;
    } catch {
      this.log.error({ queueItem: item.id }, 'queue item body is not JSON; dropping it');
      await this.deps.queue.complete(item);
      return false;
    }
    const existing = await this.deps.jobs.get(buildId);
    if (existing) {
      // Its lease lapsed while the build runs: take the lease back rather than run it twice.
      await this.deps.queue.extend(item, JOB_LEASE_SECONDS, 0);
      return false;
    }
    const created = await this.deps.jobs.create(
      buildId,
      { id: item.id, body: item.body, retries_remaining: item.retriesRemaining },
      this.deps.config.manager.JOB_REGISTRATION_TIMEOUT,
    );
    if (!created) {
      await this.deps.queue.incomplete(item, { retryAfterSeconds: 5, restoreRetry: true });
      return false;
    }
    const status = await this.deliver(buildId, { type: 'job.claimed', at: this.now(), retriesRemaining: item.retriesRemaining });
    if (!status || status.done || status.state === 'queued') {
      // Unknown or finished build (a leftover item), or one that refused the claim: clean up.
      await this.deps.jobs.remove(buildId);
      if (!status || status.done) await this.deps.queue.complete(item);
      return false;
    }
    return true;
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
    const started = this.now();
    let executionId: string;
    try {
      executionId = await executor.start({ buildId: input.buildId, attempt: input.attempt, token });
    } catch (err) {
      this.deps.metrics.recordStartFailure(executor.name, (err as { code?: string }).code ?? 'UNKNOWN');
      throw err;
    }
    this.deps.metrics.recordStartDuration(executor.kind, (this.now() - started) / 1000);
    this.log.info({ buildId: input.buildId, attempt: input.attempt, executor: executor.name, executionId }, 'worker started');
    if (this.stoppedAttempts.has(attemptKey(input.buildId, input.attempt, executor.name))) {
      // The build moved on while the control plane was answering: undo the late start.
      await executor.stop({ buildId: input.buildId, attempt: input.attempt, executionId });
    }
    return { executionId, at: this.now() };
  }

  private stopWorker(buildId: string, params: { executorName: string; attempt: number; executionId?: string }): void {
    this.stoppedAttempts.add(attemptKey(buildId, params.attempt, params.executorName));
    const executor = this.deps.executors.get(params.executorName);
    if (!executor) return;
    // Not chained behind the build's other effects: stopping must not wait for a slow requeue.
    void retry(() => executor.stop({ buildId, ...params }), 3).catch((err) =>
      this.log.error({ buildId, executor: params.executorName, attempt: params.attempt, err }, 'could not stop worker'),
    );
  }

  /** The queue item the build's current attempt claimed (kept in its job record, so any instance finds it). */
  private async claimedItem(buildId: string): Promise<Pick<QueueItem, 'id'> | undefined> {
    const job = await this.deps.jobs.get(buildId);
    if (job) return { id: job.job_queue_item.id };
    const id = (await this.deps.store.get(buildId))?.queueItemId;
    return id ? { id } : undefined;
  }

  /** Keeps the build's queue lease ahead of its deadline, so the item is not claimed again while it runs. */
  async extendLease(buildId: string, seconds = JOB_LEASE_SECONDS): Promise<void> {
    const job = await this.deps.jobs.get(buildId);
    if (job) await this.deps.queue.extend({ id: job.job_queue_item.id }, seconds, 60);
  }

  private async requeue(buildId: string, retryAfterSeconds: number): Promise<void> {
    const item = await this.claimedItem(buildId);
    await this.deps.jobs.remove(buildId);
    if (item) await this.deps.queue.incomplete(item, { retryAfterSeconds, restoreRetry: false });
    this.log.info({ buildId, retryAfterSeconds }, 'build requeued after an infrastructure failure');
  }

  private async finish(context: BuildJobContext, outcome: string): Promise<void> {
    const { buildId } = context;
    const item = await this.claimedItem(buildId);
    await this.deps.jobs.remove(buildId);
    if (item) {
      if (outcome === 'cancelled' || outcome === 'expired') await this.deps.queue.cancel(item.id);
      else await this.deps.queue.complete(item);
    }
    await this.deps.store.deleteContext(buildId);
    this.recordFinished(context, outcome);
    this.log.info({ buildId, outcome, attempt: context.attempt, reason: context.reason }, 'build finished');
  }

  private recordFinished(context: BuildJobContext, outcome: string): void {
    const { metrics } = this.deps;
    const end = context.finishedAt ?? this.now();
    if (context.executorName && context.scheduledAt !== undefined) {
      metrics.recordBuildDuration(context.executorName, outcome as 'complete' | 'error' | 'expired' | 'cancelled', (end - context.scheduledAt) / 1000);
    }
    metrics.recordEnqueueToEnd(outcome, (end - context.createdAt) / 1000);
    if (outcome === 'complete') metrics.recordJob(true);
    if (outcome === 'error' || outcome === 'expired') metrics.recordJob(false);
    if (outcome === 'cancelled') metrics.recordCancel();
  }

  /** Metrics that follow a state change: the claim (queue wait) and the registration (ack). */
  private recordTransition(before: BuildPhase | undefined, snapshot: JobSnapshot): void {
    const { context } = snapshot;
    const { metrics } = this.deps;
    if (snapshot.matches('scheduling') && before === 'waiting' && context.claimedAt !== undefined) {
      metrics.recordQueueDuration(true, (context.claimedAt - context.createdAt) / 1000);
    }
    if (snapshot.matches({ running: 'waiting' }) && before === 'build-scheduled' && context.registeredAt !== undefined) {
      if (context.scheduledAt !== undefined && context.executorName) {
        metrics.recordAck(context.executorName, (context.registeredAt - context.scheduledAt) / 1000);
      }
      metrics.recordEnqueueToRegistered((context.registeredAt - context.createdAt) / 1000);
    }
    metrics.setRunningActors(this.actors.size);
  }

  // ---- persistence, and mirroring actor state into the record and the log ----

  private mirror(buildId: string, actor: JobActor, snapshot: JobSnapshot): void {
    const phase = phaseOfState(snapshot.value);
    const { context } = snapshot;
    const done = snapshot.status === 'done';
    const before = this.lastPhase.get(buildId);
    const phaseChanged = before !== phase;
    this.lastPhase.set(buildId, phase);
    this.recordTransition(before, snapshot);
    const at = this.now();
    this.chain(buildId, async () => {
      // Taken when the write happens, not when the change happened: XState reports a change to
      // the inspector after its observers, so this is when the journal is complete, and the
      // snapshot written is never older than the history written with it.
      const history = this.unsaved.get(buildId) ?? [];
      this.unsaved.delete(buildId);
      const persisted = actor.getPersistedSnapshot();
      const final = actor.getSnapshot().status === 'done';
      await this.deps.actorStore.save(buildId, { snapshot: persisted, machineVersion: BUILD_JOB_MACHINE_VERSION, savedAt: at }, history, { final });
      if (phaseChanged) {
        await this.deps.store.appendLogs(buildId, [phaseEntry(phase, at, phase === 'pulling' ? context.pullMetadata : undefined)]);
      }
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
        await this.deps.coordinator.release(buildId);
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

  /** Stops this instance's actors without ending their builds: another instance (or a restart) takes them over. */
  async stopAll(): Promise<void> {
    for (const actor of this.actors.values()) actor.stop();
    this.actors.clear();
    await Promise.all([...this.chains.values()]);
  }
}

/** One executor's try within one attempt: a fallback within the attempt is a different worker. */
function attemptKey(buildId: string, attempt: number, executorName: string): string {
  return `${buildId}#${attempt}#${executorName}`;
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
