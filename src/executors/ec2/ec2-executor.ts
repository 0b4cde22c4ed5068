import {
  DescribeInstancesCommand,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type EC2Client,
  type Filter,
  type Instance,
} from '@aws-sdk/client-ec2';
import type { Ec2ExecutorConfig } from '../../config/config-types.js';
import { InfraError } from '../../errors/buildman-error.js';
import type { BuildExecutor, ExecutorContext, StartRequest, StopRequest, WorkerInfo } from '../build-executor.js';
import { workerIgnitionJson } from '../ignition/worker-ignition.js';
import { CoreosAmiLookup } from './coreos-ami.js';
import { createEc2Client, type Ec2ClientOptions } from './ec2-client.js';
import { awsErrorCode, ec2Failure } from './ec2-errors.js';
import { TAG_ATTEMPT, TAG_BUILD_UUID, TAG_INSTALLATION, tagValue } from './ec2-tags.js';
import { runInstancesInput } from './run-instances-input.js';

export interface Ec2ExecutorOptions extends Ec2ClientOptions {
  /** A ready client (tests, shared clients); the executor then leaves closing it to the caller. */
  client?: EC2Client;
  /** Where the Fedora CoreOS stream documents are read when COREOS_AMI is unset (`{channel}` is replaced). */
  coreosStreamUrl?: string;
}

/** Instance ids as EC2 issues them (old 8-digit and current 17-digit forms). */
const INSTANCE_ID = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/;
const LIVE_STATES = ['pending', 'running'];
/** Everything but `terminated`: instances still costing money or about to stop doing so. */
const PRESENT_STATES = ['pending', 'running', 'shutting-down', 'stopping', 'stopped'];
const PAGE_SIZE = 1000;

/**
 * Quay's `ec2` executor (reference §5.2): one Fedora CoreOS instance per build attempt, booted by
 * ignition user data into quay-builder. Differs from Quay knowingly: the ClientToken makes a
 * repeated start launch nothing new; counts use EC2's lowercase state names (Q5) and only this
 * installation's instances; a start that failed part-way is still found (by tags) and stopped.
 */
export class Ec2Executor implements BuildExecutor {
  readonly kind = 'ec2' as const;
  readonly name: string;
  private readonly client: EC2Client;
  private readonly ownsClient: boolean;
  private readonly amis: CoreosAmiLookup;

  constructor(
    readonly config: Ec2ExecutorConfig,
    private readonly ctx: ExecutorContext,
    opts: Ec2ExecutorOptions = {},
  ) {
    this.name = config.NAME;
    this.client = opts.client ?? createEc2Client(config, opts);
    this.ownsClient = opts.client === undefined;
    this.amis = new CoreosAmiLookup(opts.coreosStreamUrl);
  }

  async start(req: StartRequest): Promise<string> {
    const imageId = this.config.COREOS_AMI || (await this.amis.ami(this.config.COREOS_CHANNEL, this.config.EC2_REGION, this.name));
    const userData = workerIgnitionJson({
      buildId: req.buildId,
      token: req.token,
      server: this.ctx.grpcAddress,
      registryHostname: this.ctx.registryHostname,
      config: this.config,
    });
    const input = runInstancesInput(this.config, {
      buildId: req.buildId,
      attempt: req.attempt,
      token: req.token,
      installationId: this.ctx.installationId,
      imageId,
      userData,
    });

    let instances: Instance[];
    try {
      instances = (await this.client.send(new RunInstancesCommand(input))).Instances ?? [];
    } catch (err) {
      const code = awsErrorCode(err);
      // The attempt was launched before with other user data (a fresh token after a restore): adopt that instance.
      if (code === 'IdempotentParameterMismatch') {
        const [existing] = await this.findAttempt(req.buildId, req.attempt, LIVE_STATES);
        if (existing?.InstanceId) {
          this.ctx.log.warn({ buildId: req.buildId, attempt: req.attempt, executionId: existing.InstanceId, executor: this.name }, 'ec2 instance for this attempt already launched; using it');
          return existing.InstanceId;
        }
        // Gone already, or not yet visible (DescribeInstances is eventually consistent): a later attempt will do.
        throw new InfraError(
          `executor ${this.name} (ec2): build ${req.buildId} attempt ${req.attempt} was launched earlier with other parameters, and that instance is not running; a new attempt launches a new one`,
          'EC2_INSTANCE_GONE',
          err,
        );
      }
      if (code === 'IdempotentInstanceTerminated') throw this.attemptGone(req);
      throw ec2Failure(err, this.name, 'RunInstances');
    }

    if (instances.length !== 1 || !instances[0].InstanceId) {
      throw new InfraError(
        `executor ${this.name} (ec2): RunInstances returned ${instances.length} instances, expected exactly 1; any that exist are stopped with the attempt`,
        'EC2_UNEXPECTED_RESPONSE',
      );
    }
    const instance = instances[0];
    const executionId = instance.InstanceId!;
    const state = instance.State?.Name;
    // The ClientToken replayed an earlier launch of this attempt whose machine is going away: nothing to wait for.
    if (state === 'shutting-down' || state === 'terminated') throw this.attemptGone(req, executionId);
    this.ctx.log.info(
      { buildId: req.buildId, attempt: req.attempt, executionId, executor: this.name, instanceType: this.config.EC2_INSTANCE_TYPE, imageId },
      'ec2 instance launched',
    );
    return executionId;
  }

  async stop(req: StopRequest): Promise<void> {
    if (this.config.DEBUG) {
      this.ctx.log.info({ buildId: req.buildId, attempt: req.attempt, executionId: req.executionId, executor: this.name }, 'DEBUG is set: keeping the ec2 instance for inspection');
      return;
    }
    const ids =
      req.executionId && INSTANCE_ID.test(req.executionId)
        ? [req.executionId]
        : (await this.findAttempt(req.buildId, req.attempt, PRESENT_STATES)).map((i) => i.InstanceId!).filter(Boolean);
    if (ids.length === 0) return;

    let terminating: string[];
    try {
      const out = await this.client.send(new TerminateInstancesCommand({ InstanceIds: ids }));
      terminating = (out.TerminatingInstances ?? []).map((t) => t.InstanceId ?? '');
    } catch (err) {
      if (awsErrorCode(err) === 'InvalidInstanceID.NotFound') return; // already gone
      throw ec2Failure(err, this.name, 'TerminateInstances');
    }
    const missing = ids.filter((id) => !terminating.includes(id));
    if (missing.length > 0) {
      throw new InfraError(`executor ${this.name} (ec2): TerminateInstances did not report ${missing.join(', ')} as terminating; it is retried`, 'EC2_UNEXPECTED_RESPONSE');
    }
    this.ctx.log.info({ buildId: req.buildId, attempt: req.attempt, executionIds: ids, executor: this.name }, 'ec2 instance terminating');
  }

  async runningCount(): Promise<number> {
    return (await this.describe([this.installationFilter(), { Name: 'instance-state-name', Values: LIVE_STATES }], 'DescribeInstances (count)')).length;
  }

  async listWorkers(): Promise<WorkerInfo[]> {
    const instances = await this.describe([this.installationFilter(), { Name: 'instance-state-name', Values: PRESENT_STATES }], 'DescribeInstances (list)');
    return instances.map((i) => ({
      buildId: tagValue(i.Tags, TAG_BUILD_UUID) ?? '',
      attempt: Number(tagValue(i.Tags, TAG_ATTEMPT)) || 0,
      executionId: i.InstanceId ?? '',
      createdAt: i.LaunchTime?.getTime() ?? 0,
      running: LIVE_STATES.includes(i.State?.Name ?? ''),
    }));
  }

  async close(): Promise<void> {
    // Instances outlive the manager by design (the orphan sweep finds them); only the client goes.
    if (this.ownsClient) this.client.destroy();
  }

  private attemptGone(req: StartRequest, executionId?: string): InfraError {
    return new InfraError(
      `executor ${this.name} (ec2): the instance launched earlier for build ${req.buildId} attempt ${req.attempt}${executionId ? ` (${executionId})` : ''} is already terminated; a new attempt launches a new one`,
      'EC2_INSTANCE_GONE',
    );
  }

  private installationFilter(): Filter {
    return { Name: `tag:${TAG_INSTALLATION}`, Values: [this.ctx.installationId] };
  }

  /** This installation's instances for one attempt of one build. */
  private findAttempt(buildId: string, attempt: number, states: string[]): Promise<Instance[]> {
    return this.describe(
      [
        this.installationFilter(),
        { Name: `tag:${TAG_BUILD_UUID}`, Values: [buildId] },
        { Name: `tag:${TAG_ATTEMPT}`, Values: [String(attempt)] },
        { Name: 'instance-state-name', Values: states },
      ],
      'DescribeInstances (by build tags)',
    );
  }

  /** Every instance matching the filters, across pages. */
  private async describe(filters: Filter[], action: string): Promise<Instance[]> {
    const found: Instance[] = [];
    let nextToken: string | undefined;
    do {
      let out;
      try {
        out = await this.client.send(new DescribeInstancesCommand({ Filters: filters, MaxResults: PAGE_SIZE, NextToken: nextToken }));
      } catch (err) {
        throw ec2Failure(err, this.name, action);
      }
      for (const r of out.Reservations ?? []) found.push(...(r.Instances ?? []));
      nextToken = out.NextToken || undefined;
    } while (nextToken);
    return found;
  }
}
