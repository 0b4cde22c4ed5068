import * as grpc from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import { createHash, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { BuildManagerService } from '../../proto/gen/buildman.js';
import type { BuildStore } from '../builds/build-store.js';
import { MemoryBuildStore } from '../builds/memory-build-store.js';
import { RedisBuildStore } from '../builds/redis-build-store.js';
import { LocalCoordinator, type Coordinator } from '../cluster/coordinator.js';
import { RedisCoordinator } from '../cluster/redis-coordinator.js';
import type { BuildmanConfig } from '../config/config-types.js';
import { PermanentError } from '../errors/buildman-error.js';
import { createExecutors } from '../executors/create-executors.js';
import { OrphanSweep } from '../executors/orphan-sweep.js';
import { startInspectServer } from '../inspect/inspect-server.js';
import { buildManagerService } from '../grpc/build-manager-service.js';
import { JobRegistry } from '../orchestrator/job-registry.js';
import { MemoryOrchestrator } from '../orchestrator/memory-orchestrator.js';
import { KeyEvent, slashJoin, type Orchestrator } from '../orchestrator/orchestrator.js';
import { RedisOrchestrator } from '../orchestrator/redis-orchestrator.js';
import type { ActorStore } from '../persistence/actor-store.js';
import { MemoryActorStore } from '../persistence/memory-actor-store.js';
import { RedisActorStore } from '../persistence/redis-actor-store.js';
import type { BuildQueue } from '../queue/build-queue.js';
import { MemoryQueue } from '../queue/memory-queue.js';
import { RedisQueue } from '../queue/redis-queue.js';
import { closeRedis, createRedis, watchConnectionHealth } from '../redis/redis-connection.js';
import { JwtBuildTokens } from '../tokens/jwt-build-tokens.js';
import { SharedServiceKeys } from '../tokens/shared-service-keys.js';
import { loadServiceKeys } from '../tokens/service-keys.js';
import { BuildMetrics } from '../metrics/build-metrics.js';
import type { Logger } from '../util/logger.js';
import { ActorHost } from './actor-host.js';
import type { ManagerHandle } from './manager-handle.js';
import { ManagerService } from './manager-service.js';
import { Scheduler } from './scheduler.js';
import { ManagerWorkerGateway } from './worker-gateway.js';

interface Backends {
  /** Where other instances' public service keys are found (none in a single process). */
  lookupPublicKey?: (kid: string) => Promise<KeyObject | undefined>;
  publishKey?: (kid: string, key: KeyObject) => Promise<void>;
  orchestrator: Orchestrator;
  queue: BuildQueue;
  store: BuildStore;
  actorStore: ActorStore;
  coordinator: Coordinator;
  close(): Promise<void>;
}

/** The shared state: in this process (embedded default) or in Redis (several instances). */
async function openBackends(config: BuildmanConfig, logger: Logger): Promise<Backends> {
  const { manager, server } = config;
  const orch = manager.ORCHESTRATOR;
  if (orch.kind === 'memory') {
    return {
      orchestrator: new MemoryOrchestrator(),
      queue: new MemoryQueue(),
      store: new MemoryBuildStore({ dataDir: server.dataDir }),
      actorStore: new MemoryActorStore({ maxHistoryEntries: manager.historyMaxEvents }),
      coordinator: new LocalCoordinator(),
      async close() {},
    };
  }
  const prefix = manager.ORCHESTRATOR_PREFIX;
  const redis = createRedis(orch, 'actors');
  watchConnectionHealth(redis, logger, 'actors');
  const coordinator = new RedisCoordinator(orch, { prefix, logger });
  await coordinator.start();
  const sharedKeys = new SharedServiceKeys(redis, prefix);
  return {
    lookupPublicKey: (kid) => sharedKeys.lookup(kid),
    publishKey: (kid, key) => sharedKeys.publish(kid, key),
    orchestrator: new RedisOrchestrator(orch, { prefix, logger }),
    queue: new RedisQueue(orch, { prefix, logger }),
    store: new RedisBuildStore(orch, { prefix, logger }),
    actorStore: new RedisActorStore(redis, {
      prefix,
      retentionSeconds: manager.historyRetentionSeconds,
      maxHistoryEntries: manager.historyMaxEvents,
    }),
    coordinator,
    async close() {
      await closeRedis(redis);
    },
  };
}

/**
 * Quay's API cancels a build by writing `cancel/<uuid>` (unprefixed, quirk Q4) and publishing the
 * write on the orchestrator's event channel. Quay's own manager cannot match it; we do, with or
 * without the prefix, so a cancel from Quay's UI reaches the build.
 */
function watchQuayCancels(orchestrator: Orchestrator, prefix: string, cancel: (buildId: string) => void): () => void {
  const prefixes = new Set(['cancel/', slashJoin(prefix, 'cancel') + '/']);
  const offs = [...prefixes].map((p) =>
    orchestrator.onKeyChange(p, (change) => {
      if (change.event !== KeyEvent.CREATE && change.event !== KeyEvent.SET) return;
      const buildId = change.key.slice(p.length);
      if (/^[0-9a-f-]{36}$/i.test(buildId)) cancel(buildId);
    }),
  );
  return () => offs.forEach((off) => off());
}

/** A short stable name for this installation, from its key prefix (k8s label values allow 63 chars). */
function installationId(prefix: string): string {
  return 'bm-' + createHash('sha256').update(prefix).digest('hex').slice(0, 12);
}

/**
 * Assembles a manager from its config: stores, orchestrator, tokens, executors, the actor host,
 * the scheduler and the gRPC server. The HTTP API is put in front by the caller.
 */
export interface ManagerOptions {
  logger: Logger;
  /** Serve live inspection (Stately inspector protocol over WebSocket) on this loopback port; 0 picks one. */
  inspectPort?: number;
}

export async function startManager(config: BuildmanConfig, opts: ManagerOptions): Promise<ManagerHandle> {
  const { logger } = opts;
  const { manager, server } = config;
  if (manager.EXECUTORS.length === 0) throw new PermanentError('no executor is configured: add one to BUILD_MANAGER[1].EXECUTORS', 'NO_EXECUTOR');
  await mkdir(server.dataDir, { recursive: true });
  // First, so a taken port fails the start before anything else is opened.
  const inspection =
    opts.inspectPort === undefined ? undefined : await startInspectServer({ port: opts.inspectPort, logger, secrets: config.secrets });

  const keys = await loadServiceKeys({
    keyLocation: config.INSTANCE_SERVICE_KEY_LOCATION,
    kidLocation: config.INSTANCE_SERVICE_KEY_KID_LOCATION,
    dataDir: server.dataDir,
  });
  const backends = await openBackends(config, logger);
  await backends.publishKey?.(keys.kid, keys.privateKey);
  const tokens = new JwtBuildTokens({
    ...keys,
    issuer: config.INSTANCE_SERVICE_KEY_SERVICE,
    audience: config.BUILDMAN_HOSTNAME,
    lookupPublicKey: backends.lookupPublicKey,
  });
  const { orchestrator, queue, store, actorStore, coordinator } = backends;
  const jobs = new JobRegistry(orchestrator, manager.ORCHESTRATOR_PREFIX, {
    machineMaxTime: manager.MACHINE_MAX_TIME,
    heartbeatTtlSeconds: manager.heartbeatTtlSeconds ?? 60,
  });

  // The gRPC server binds first: workers need its real port.
  const grpcServer = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${server.grpcHost}:${server.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(new PermanentError(`cannot listen for gRPC on ${server.grpcHost}:${server.grpcPort}: ${err.message}`, 'GRPC_BIND')) : resolve(port),
    ),
  );
  const workerHost = server.grpcHost === '0.0.0.0' || server.grpcHost === '::' ? '127.0.0.1' : server.grpcHost;
  const grpcAddress = server.workerGrpcAddress ?? `${workerHost}:${grpcPort}`;

  const installation = installationId(manager.ORCHESTRATOR_PREFIX);
  const executors = createExecutors(manager.EXECUTORS, {
    registryHostname: config.SERVER_HOSTNAME,
    managerHostname: config.BUILDMAN_HOSTNAME,
    grpcAddress,
    installationId: installation,
    dataDir: server.dataDir,
    log: logger.child({ component: 'executor' }),
  }, { ratePerSecond: manager.executorRateLimit, burst: Math.ceil(2 * (manager.executorRateLimit ?? 10)) });
  const metrics = new BuildMetrics({ defaultMetrics: true });
  const host = new ActorHost({ config, store, queue, jobs, tokens, executors, coordinator, actorStore, metrics, logger, inspector: inspection?.feed });
  const offExpired = jobs.onExpired((buildId) => {
    logger.warn({ buildId }, 'job deadline passed');
    metrics.recordExpiry();
    host.deliver(buildId, { type: 'job.expired', at: Date.now() }).catch((err) => logger.error({ buildId, err }, 'could not expire build'));
  });
  const offQuayCancel = watchQuayCancels(orchestrator, manager.ORCHESTRATOR_PREFIX, (buildId) =>
    host.deliver(buildId, { type: 'job.cancel', at: Date.now(), reason: "cancelled through Quay's cancel key" }).catch((err) =>
      logger.error({ buildId, err }, 'could not cancel build'),
    ),
  );
  // Workers of this installation that no live build attempt owns are stopped (nothing outlives its build).
  const sweep = new OrphanSweep({
    executors,
    isLive: async (buildId, attempt) => {
      const job = await jobs.get(buildId);
      return !!job && (job.attempt === undefined || job.attempt === attempt);
    },
    graceMs: (manager.orphanGraceSeconds ?? 120) * 1000,
    intervalMs: (manager.orphanSweepSeconds ?? 60) * 1000,
    logger: logger.child({ component: 'orphan-sweep' }),
    onRemoved: (executor, count) => metrics.recordOrphansRemoved(executor, count),
  });
  sweep.start();
  const scheduler = new Scheduler({ queue, jobs, host, coordinator, workerCap: manager.ALLOWED_WORKER_COUNT, logger });
  const gateway = new ManagerWorkerGateway({ config, host, store, jobs, queue, tokens });
  grpcServer.addService(BuildManagerService, buildManagerService(gateway, logger));
  // The standard gRPC health service, so load balancers and probes can check each instance.
  const health = new HealthImplementation({ '': 'SERVING', 'buildman_pb.BuildManager': 'SERVING' });
  health.addToServer(grpcServer);
  const service = new ManagerService({ config, store, queue, host, tokens, actorStore, metrics });
  scheduler.kick();

  return {
    service,
    grpcAddress,
    grpcPort,
    instanceId: coordinator.instanceId,
    installationId: installation,
    inspectPort: inspection?.port,
    async stop() {
      health.setStatus('', 'NOT_SERVING');
      health.setStatus('buildman_pb.BuildManager', 'NOT_SERVING');
      scheduler.close();
      await sweep.close();
      offExpired();
      offQuayCancel();
      await host.stopAll();
      await inspection?.close();
      // Local workers die with their manager; remote ones are left to their own deadlines.
      await Promise.all([...executors.values()].map((e) => e.close()));
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          grpcServer.forceShutdown();
          resolve();
        }, 2000).unref();
        grpcServer.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      await coordinator.close();
      await Promise.all([queue.close(), store.close(), orchestrator.close(), actorStore.close()]);
      await backends.close();
    },
  };
}
