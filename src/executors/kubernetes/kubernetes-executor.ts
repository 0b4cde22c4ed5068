import type { V1Job } from '@kubernetes/client-node';
import type { KubernetesExecutorConfig } from '../../config/config-types.js';
import type { BuildExecutor, ExecutorContext, StartRequest, StopRequest, WorkerInfo } from '../build-executor.js';
import { installationSelector, isJobFinished, jobName, LABEL_INSTALLATION, labelValue, workerFromJob } from './job-labels.js';
import { workerJob } from './job-manifest.js';
import { kubeClients, type KubeClients } from './kube-connection.js';
import { apiStatus, isQuotaRefusal, kubeFailure } from './kube-failure.js';

/**
 * Quay's `kubernetes` (a QEMU VM in a pod) and `kubernetesPodman` (the builder image itself)
 * executors: one batch/v1 Job per worker. Differences from Quay: the Job's name is
 * `<buildId>-<attempt>`, so a repeated start creates one Job; workers carry this installation's
 * label, so counts see only ours; finished Jobs never count; VERIFY_TLS is honoured; stopping
 * treats 404 as done and reports other failures.
 */
export class KubernetesExecutor implements BuildExecutor {
  readonly kind: KubernetesExecutorConfig['EXECUTOR'];
  readonly name: string;
  private readonly clients: KubeClients;

  constructor(
    readonly config: KubernetesExecutorConfig,
    private readonly ctx: ExecutorContext,
  ) {
    this.kind = config.EXECUTOR;
    this.name = config.NAME;
    this.clients = kubeClients(config);
  }

  private get namespace(): string {
    return this.config.BUILDER_NAMESPACE;
  }

  /** Creates the worker's Job; AlreadyExists means an earlier call for this attempt made it. */
  async start(req: StartRequest): Promise<string> {
    const body = workerJob({
      config: this.config,
      buildId: req.buildId,
      attempt: req.attempt,
      token: req.token,
      installationId: this.ctx.installationId,
      grpcAddress: this.ctx.grpcAddress,
      registryHostname: this.ctx.registryHostname,
      now: new Date(),
    });
    const name = body.metadata!.name!;
    const logFields = { buildId: req.buildId, attempt: req.attempt, executor: this.name, job: name, namespace: this.namespace };
    try {
      await this.clients.batch.createNamespacedJob({ namespace: this.namespace, body });
      this.ctx.log.info(logFields, 'kubernetes worker job created');
      return name;
    } catch (err) {
      if (apiStatus(err) === 409) {
        this.ctx.log.info(logFields, 'kubernetes worker job already exists; start is a repeat');
        return name;
      }
      // Quota is checked before the name, so a repeated start at a full quota must look for its Job.
      if (isQuotaRefusal(err) && (await this.ownJobExists(name))) return name;
      throw kubeFailure(err, this.config, this.clients.server, `create Job ${name} in namespace ${this.namespace}`);
    }
  }

  /**
   * Deletes the Job (Background: the batch/v1 default would orphan its pods) and then its pods by
   * label, as Quay does, so nothing keeps running if the garbage collector lags. Gone already is fine.
   */
  async stop(req: StopRequest): Promise<void> {
    const name = req.executionId ?? jobName(req.buildId, req.attempt);
    if (this.config.DEBUG) {
      this.ctx.log.info({ buildId: req.buildId, executor: this.name, job: name }, 'DEBUG is set: keeping the worker job for inspection');
      return;
    }
    let failure: unknown;
    try {
      await this.clients.batch.deleteNamespacedJob({ name, namespace: this.namespace, propagationPolicy: 'Background' });
    } catch (err) {
      if (apiStatus(err) !== 404) failure = kubeFailure(err, this.config, this.clients.server, `delete Job ${name} in namespace ${this.namespace}`);
    }
    try {
      await this.clients.core.deleteCollectionNamespacedPod({ namespace: this.namespace, labelSelector: `job-name=${name}` });
    } catch (err) {
      if (apiStatus(err) !== 404) failure ??= kubeFailure(err, this.config, this.clients.server, `delete the pods of Job ${name} in namespace ${this.namespace}`);
    }
    if (failure) throw failure;
    this.ctx.log.info({ buildId: req.buildId, executor: this.name, job: name }, 'kubernetes worker job deleted');
  }

  /** Our Jobs that have not finished (Jobs kept by DEBUG or retention count only while running). */
  async runningCount(): Promise<number> {
    const jobs = await this.ownJobs('count running Jobs');
    return jobs.filter((j) => !isJobFinished(j)).length;
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    const jobs = await this.ownJobs('list Jobs');
    return jobs.map(workerFromJob).filter((w): w is WorkerInfo => w !== undefined);
  }

  /** Nothing to release: client-node opens a connection per request. */
  async close(): Promise<void> {}

  private async ownJobs(action: string): Promise<V1Job[]> {
    try {
      const list = await this.clients.batch.listNamespacedJob({ namespace: this.namespace, labelSelector: installationSelector(this.ctx.installationId) });
      return list.items ?? [];
    } catch (err) {
      throw kubeFailure(err, this.config, this.clients.server, `${action} in namespace ${this.namespace}`);
    }
  }

  private async ownJobExists(name: string): Promise<boolean> {
    try {
      const job = await this.clients.batch.readNamespacedJob({ name, namespace: this.namespace });
      return job.metadata?.labels?.[LABEL_INSTALLATION] === labelValue(this.ctx.installationId);
    } catch {
      return false;
    }
  }
}
