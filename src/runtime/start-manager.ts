import * as grpc from '@grpc/grpc-js';
import { mkdir } from 'node:fs/promises';
import { BuildManagerService } from '../../proto/gen/buildman.js';
import { MemoryBuildStore } from '../builds/memory-build-store.js';
import type { BuildmanConfig } from '../config/config-types.js';
import { PermanentError } from '../errors/buildman-error.js';
import { createExecutors } from '../executors/create-executors.js';
import { buildManagerService } from '../grpc/build-manager-service.js';
import { JobRegistry } from '../orchestrator/job-registry.js';
import { MemoryOrchestrator } from '../orchestrator/memory-orchestrator.js';
import { MemoryQueue } from '../queue/memory-queue.js';
import { JwtBuildTokens } from '../tokens/jwt-build-tokens.js';
import { loadServiceKeys } from '../tokens/service-keys.js';
import type { Logger } from '../util/logger.js';
import { ActorHost } from './actor-host.js';
import type { ManagerHandle } from './manager-handle.js';
import { ManagerService } from './manager-service.js';
import { Scheduler } from './scheduler.js';
import { ManagerWorkerGateway } from './worker-gateway.js';

/**
 * Assembles a manager from its config: stores, orchestrator, tokens, executors, the actor host,
 * the scheduler and the gRPC server. The HTTP API is put in front by the caller.
 */
export async function startManager(config: BuildmanConfig, opts: { logger: Logger }): Promise<ManagerHandle> {
  const { logger } = opts;
  const { manager, server } = config;
  if (manager.ORCHESTRATOR.kind !== 'memory') {
    throw new PermanentError(
      'ORCHESTRATOR with REDIS_* keys is accepted by the config but not served by this version yet; remove ORCHESTRATOR (or use MEM_* keys) to run on the in-memory orchestrator',
      'ORCHESTRATOR_UNSUPPORTED',
    );
  }
  await mkdir(server.dataDir, { recursive: true });

  const keys = await loadServiceKeys({
    keyLocation: config.INSTANCE_SERVICE_KEY_LOCATION,
    kidLocation: config.INSTANCE_SERVICE_KEY_KID_LOCATION,
    dataDir: server.dataDir,
  });
  const tokens = new JwtBuildTokens({ ...keys, issuer: config.INSTANCE_SERVICE_KEY_SERVICE, audience: config.BUILDMAN_HOSTNAME });
  const orchestrator = new MemoryOrchestrator();
  const jobs = new JobRegistry(orchestrator, manager.ORCHESTRATOR_PREFIX, {
    machineMaxTime: manager.MACHINE_MAX_TIME,
    heartbeatTtlSeconds: manager.heartbeatTtlSeconds ?? 60,
  });
  const queue = new MemoryQueue();
  const store = new MemoryBuildStore({ dataDir: server.dataDir });

  // The gRPC server binds first: workers need its real port.
  const grpcServer = new grpc.Server({ 'grpc.keepalive_permit_without_calls': 1 });
  const grpcPort = await new Promise<number>((resolve, reject) =>
    grpcServer.bindAsync(`${server.grpcHost}:${server.grpcPort}`, grpc.ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(new PermanentError(`cannot listen for gRPC on ${server.grpcHost}:${server.grpcPort}: ${err.message}`, 'GRPC_BIND')) : resolve(port),
    ),
  );
  const workerHost = server.grpcHost === '0.0.0.0' || server.grpcHost === '::' ? '127.0.0.1' : server.grpcHost;
  const grpcAddress = `${workerHost}:${grpcPort}`;

  const executors = createExecutors(manager.EXECUTORS, {
    registryHostname: config.SERVER_HOSTNAME,
    managerHostname: config.BUILDMAN_HOSTNAME,
    grpcAddress,
    dataDir: server.dataDir,
    log: logger.child({ component: 'executor' }),
  });
  const host = new ActorHost({ config, store, queue, jobs, tokens, executors, logger });
  const offExpired = jobs.onExpired((buildId) => {
    logger.warn({ buildId }, 'job deadline passed');
    host.send(buildId, { type: 'job.expired', at: Date.now() });
  });
  const scheduler = new Scheduler({ queue, jobs, host, workerCap: manager.ALLOWED_WORKER_COUNT, logger });
  const gateway = new ManagerWorkerGateway({ config, host, store, jobs, tokens });
  grpcServer.addService(BuildManagerService, buildManagerService(gateway, logger));
  const service = new ManagerService({ config, store, queue, host, tokens });
  scheduler.kick();

  return {
    service,
    grpcAddress,
    grpcPort,
    async stop() {
      scheduler.close();
      offExpired();
      await host.stopAll();
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
      await Promise.all([queue.close(), store.close(), orchestrator.close()]);
    },
  };
}
