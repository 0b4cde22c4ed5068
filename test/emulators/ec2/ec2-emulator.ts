import type { ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { workerEnvFromIgnition } from '../../../src/executors/ignition/worker-ignition.js';
import { Ec2ApiError } from './ec2-api-error.js';
import { describeInstancesXml, errorXml, runInstancesXml, terminateInstancesXml } from './ec2-xml.js';
import { ec2Id, INSTANCE_ID_RE, type EmulatedInstance, type InstanceStateName } from './emulated-instance.js';
import { matchesFilters, parseFilters } from './instance-filters.js';
import { fingerprint, listOf, parseForm, type QueryParams } from './query-params.js';
import { parseRunInstances } from './run-instances-request.js';
import { checkSigV4 } from './sigv4-verify.js';

export type { EmulatedInstance, InstanceStateName } from './emulated-instance.js';
export { EC2_ERROR_STATUS } from './ec2-api-error.js';

export const API_VERSION = '2016-11-15';
export const DEFAULT_ACCESS_KEY_ID = 'AKIAEMULATOR0000TEST';
export const DEFAULT_SECRET_ACCESS_KEY = 'emulator-secret-key-do-not-log-0123456789';

export interface Ec2EmulatorOptions {
  /** Access key id → secret access key the emulator accepts. Default: DEFAULT_ACCESS_KEY_ID/DEFAULT_SECRET_ACCESS_KEY. */
  credentials?: Record<string, string>;
  /** Check the SigV4 signature with the secret (default true). False: only the header's shape, scope and key id. */
  verifySignatures?: boolean;
  /** ms an instance stays `pending` before `running` (the worker starts then). Default 100. */
  bootDelayMs?: number;
  /** ms from `shutting-down` (worker gone) to `terminated`, and `stopping` to `stopped`. Default 100. */
  shutdownDelayMs?: number;
  /** ms between SIGTERM and SIGKILL when an instance with a worker is terminated. Default 2000. */
  killGraceMs?: number;
  /**
   * Boots a worker on each instance: called when it turns `running`, with the environment read from
   * the instance's ignition user data (`workerEnvFromIgnition`). The instance shuts down when the
   * process exits, and TerminateInstances kills the process.
   */
  runWorker?: (env: Record<string, string>, instance: EmulatedInstance) => ChildProcess;
  /** AMIs that exist; others → InvalidAMIID.NotFound. Default: any well-formed id. */
  images?: string[];
  /** Key pairs that exist; others → InvalidKeyPair.NotFound. Default: any name. */
  keyPairs?: string[];
  /** Most pending+running instances at once; more → InstanceLimitExceeded. Default unlimited. */
  instanceLimit?: number;
}

/** What a fault does to a matching request. */
export type Ec2Fault =
  /** Answer with this EC2 error code, at its real HTTP status (EC2_ERROR_STATUS) unless `status` is given. */
  | { kind: 'error'; code: string; message?: string; status?: number }
  /** Carry out the request, then hold the response back `ms` (a client timeout then loses a reply EC2 acted on). */
  | { kind: 'delay'; ms: number }
  /** Close the connection without any response. */
  | { kind: 'reset' };

export interface FaultOptions {
  /** Only requests for this Action (default: every action). */
  action?: string;
  /** How many matching requests it affects (default: all, until clearFaults). */
  times?: number;
}

/** One request as received, in arrival order. */
export interface RecordedRequest {
  action: string;
  params: Map<string, string>;
  accessKeyId?: string;
  /** The region of the signature's credential scope (the client's region). */
  region?: string;
  /** The HTTP status answered (0: the connection was reset). */
  status: number;
  /** The EC2 error code answered, if any. */
  errorCode?: string;
}

interface FaultRule {
  fault: Ec2Fault;
  action?: string;
  remaining: number;
}

interface ClientTokenRecord {
  fingerprint: string;
  reservationId: string;
  instanceIds: string[];
}

/**
 * An EC2 Query API endpoint on 127.0.0.1 for the real @aws-sdk/client-ec2: RunInstances,
 * DescribeInstances and TerminateInstances with EC2's XML, errors, states, ClientToken idempotency
 * and SigV4 checks; optionally a real worker process per instance; and fault injection.
 */
export class Ec2Emulator {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly requests: RecordedRequest[] = [];
  private readonly secrets: Map<string, string>;
  private readonly byId = new Map<string, EmulatedInstance>();
  private readonly byClientToken = new Map<string, ClientTokenRecord>();
  private readonly faults: FaultRule[] = [];
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sockets = new Set<Socket>();
  private readonly server: Server;
  private listeningPort = 0;
  private refusing = false;
  private closed = false;

  constructor(private readonly opts: Ec2EmulatorOptions = {}) {
    this.secrets = new Map(Object.entries(opts.credentials ?? { [DEFAULT_ACCESS_KEY_ID]: DEFAULT_SECRET_ACCESS_KEY }));
    [this.accessKeyId, this.secretAccessKey] = [...this.secrets][0];
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
  }

  /** Listens on 127.0.0.1 (an ephemeral port unless given). */
  async start(port = 0): Promise<this> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.listeningPort = (this.server.address() as AddressInfo).port;
    return this;
  }

  get port(): number {
    return this.listeningPort;
  }

  /** The `EC2_ENDPOINT` to give a client. */
  get endpoint(): string {
    return `http://127.0.0.1:${this.listeningPort}`;
  }

  // ---- fault injection ----

  /** Applies `fault` to matching requests (after the signature check, so auth faults stay distinct). */
  inject(fault: Ec2Fault, opts: FaultOptions = {}): void {
    this.faults.push({ fault, action: opts.action, remaining: opts.times ?? Infinity });
  }

  /** `RequestLimitExceeded`, 503. */
  throttle(opts?: FaultOptions): void {
    this.inject({ kind: 'error', code: 'RequestLimitExceeded' }, opts);
  }

  /** `InsufficientInstanceCapacity`, 500 (EC2 lists it among server errors). */
  noCapacity(opts: FaultOptions = { action: 'RunInstances' }): void {
    this.inject({ kind: 'error', code: 'InsufficientInstanceCapacity' }, opts);
  }

  /** `InternalError`, 500. */
  internalError(opts?: FaultOptions): void {
    this.inject({ kind: 'error', code: 'InternalError' }, opts);
  }

  /** `AuthFailure`, 401, whatever the credentials. */
  authFailure(opts?: FaultOptions): void {
    this.inject({ kind: 'error', code: 'AuthFailure' }, opts);
  }

  /** Every response held back `ms` after the request is carried out. */
  delay(ms: number, opts?: FaultOptions): void {
    this.inject({ kind: 'delay', ms }, opts);
  }

  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Stops listening and drops open (keep-alive) connections: clients get ECONNREFUSED. */
  async refuseConnections(): Promise<void> {
    if (this.refusing) return;
    this.refusing = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    await closed;
    // Let a client in this process see its pooled sockets close, so its next request dials (and is refused).
    await new Promise((r) => setTimeout(r, 50));
  }

  /** Listens again, on the same port. */
  async acceptConnections(): Promise<void> {
    if (!this.refusing) return;
    this.refusing = false;
    await this.start(this.listeningPort);
  }

  // ---- inspection and control ----

  /** Every instance ever launched or seeded (terminated ones stay visible, as in EC2 for about an hour). */
  instances(): EmulatedInstance[] {
    return [...this.byId.values()];
  }

  instance(id: string): EmulatedInstance | undefined {
    return this.byId.get(id);
  }

  /** The requests for one action, in order. */
  calls(action: string): RecordedRequest[] {
    return this.requests.filter((r) => r.action === action);
  }

  /** Adds an instance as if someone else launched it (another installation, a hand-made VM). */
  seedInstance(over: { tags?: Record<string, string>; state?: InstanceStateName; instanceType?: string; launchTime?: Date } = {}): EmulatedInstance {
    const instance = this.newInstance(ec2Id('r'), {
      imageId: 'ami-0123456789abcdef0',
      instanceType: over.instanceType ?? 't3.micro',
      securityGroupIds: [],
      blockDevices: [],
      shutdownBehavior: 'stop',
      tags: new Map(Object.entries(over.tags ?? {})),
    });
    instance.state = over.state ?? 'running';
    if (over.launchTime) instance.launchTime = over.launchTime;
    return instance;
  }

  /** The machine powers itself off (as `shutdown -h` inside it would): honours the shutdown behaviour. */
  powerOff(id: string): void {
    const instance = this.byId.get(id);
    if (!instance || (instance.state !== 'pending' && instance.state !== 'running')) return;
    if (instance.process && instance.process.exitCode === null && instance.process.signalCode === null) signalTree(instance.process, 'SIGKILL');
    else this.shutDown(instance, 'Client.InstanceInitiatedShutdown');
  }

  /** Resolves once the instance is in `state` (rejects after `timeoutMs`). */
  async waitForState(id: string, state: InstanceStateName, timeoutMs = 10_000): Promise<EmulatedInstance> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const instance = this.byId.get(id);
      if (instance?.state === state) return instance;
      if (Date.now() > deadline) throw new Error(`instance ${id} is ${instance?.state ?? 'unknown'}, not ${state}, after ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Kills every worker, stops listening, drops connections. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const exits = this.instances()
      .map((i) => i.process)
      .filter((p): p is ChildProcess => p !== undefined && p.exitCode === null && p.signalCode === null)
      .map((p) => {
        const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
        signalTree(p, 'SIGKILL');
        return Promise.race([exited, new Promise<void>((r) => setTimeout(r, 2000))]);
      });
    await Promise.all(exits);
    if (!this.refusing) {
      const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const s of this.sockets) s.destroy();
      await closed;
    }
  }

  // ---- the HTTP side ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    const url = req.url ?? '/';
    const params = req.method === 'GET' ? parseForm(url.split('?')[1] ?? '') : parseForm(body);
    const record: RecordedRequest = { action: params.get('Action') ?? '', params, status: 0 };
    this.requests.push(record);
    const requestId = randomUUID();

    let status: number;
    let xml: string;
    let delayMs = 0;
    try {
      const auth = checkSigV4({ method: req.method ?? 'POST', url, headers: req.headers, body }, this.secrets, {
        verify: this.opts.verifySignatures ?? true,
        now: Date.now(),
      });
      if ('code' in auth) throw new Ec2ApiError(auth.code, auth.message, auth.code === 'AuthFailure' || auth.code === 'MissingAuthenticationToken' ? 401 : 400);
      record.accessKeyId = auth.accessKeyId;
      record.region = auth.region;
      for (const fault of this.takeFaults(record.action)) {
        if (fault.kind === 'reset') {
          req.socket.destroy();
          return;
        }
        if (fault.kind === 'error') throw new Ec2ApiError(fault.code, fault.message, fault.status);
        delayMs += fault.ms;
      }
      xml = this.dispatch(record.action, params, requestId);
      status = 200;
    } catch (err) {
      const e = err instanceof Ec2ApiError ? err : new Ec2ApiError('InternalError', `An internal error has occurred (${(err as Error).message})`);
      status = e.status;
      record.errorCode = e.code;
      xml = errorXml(e.code, e.message, requestId);
    }
    record.status = status;
    if (delayMs > 0) await this.sleep(delayMs);
    if (res.destroyed) return;
    res.writeHead(status, { 'content-type': 'text/xml;charset=UTF-8', 'x-amzn-requestid': requestId, server: 'AmazonEC2' });
    res.end(xml);
  }

  private takeFaults(action: string): Ec2Fault[] {
    const hit: Ec2Fault[] = [];
    for (const rule of this.faults) {
      if (rule.remaining <= 0 || (rule.action !== undefined && rule.action !== action)) continue;
      rule.remaining--;
      hit.push(rule.fault);
    }
    return hit;
  }

  private dispatch(action: string, p: QueryParams, requestId: string): string {
    const version = p.get('Version');
    if (!version) throw new Ec2ApiError('MissingParameter', 'The request must contain the parameter Version');
    if (version !== API_VERSION) throw new Ec2ApiError('NoSuchVersion', `An invalid or unsupported API version ${version} was specified`);
    switch (action) {
      case 'RunInstances':
        return this.runInstances(p, requestId);
      case 'DescribeInstances':
        return this.describeInstances(p, requestId);
      case 'TerminateInstances':
        return this.terminateInstances(p, requestId);
      case '':
        throw new Ec2ApiError('MissingAction', 'The request must contain the parameter Action');
      default:
        throw new Ec2ApiError('InvalidAction', `The action ${action} is not valid for this web service.`);
    }
  }

  // ---- actions ----

  private runInstances(p: QueryParams, requestId: string): string {
    const token = p.get('ClientToken');
    const print = fingerprint(p);
    const prior = token === undefined ? undefined : this.byClientToken.get(token);
    if (prior) {
      if (prior.instanceIds.every((id) => this.byId.get(id)!.state === 'terminated'))
        throw new Ec2ApiError('IdempotentInstanceTerminated', 'The client token you have provided is associated with an instance that has been terminated. Please use a different client token.');
      // Same token: EC2 answers with the original reservation, or refuses if anything else changed.
      if (prior.fingerprint !== print)
        throw new Ec2ApiError('IdempotentParameterMismatch', 'The client token you have provided is associated with a resource that is already deleted or with different parameters. Please use a different client token.');
      return runInstancesXml(requestId, prior.reservationId, prior.instanceIds.map((id) => this.byId.get(id)!));
    }

    const spec = parseRunInstances(p, { images: this.opts.images, keyPairs: this.opts.keyPairs });
    // Like EC2: launch up to MaxCount as the limit allows, and refuse only if MinCount cannot fit.
    const room = this.opts.instanceLimit === undefined ? Infinity : this.opts.instanceLimit - this.liveCount();
    if (spec.minCount > room)
      throw new Ec2ApiError('InstanceLimitExceeded', `You have requested more instances (${spec.minCount}) than your current instance limit of ${this.opts.instanceLimit} allows for the specified instance type.`);

    const reservationId = ec2Id('r');
    const launched: EmulatedInstance[] = [];
    for (let n = 0; n < Math.min(spec.maxCount, room); n++) {
      const instance = this.newInstance(reservationId, {
        imageId: spec.imageId,
        instanceType: spec.instanceType,
        keyName: spec.keyName,
        subnetId: spec.subnetId,
        securityGroupIds: spec.securityGroupIds,
        associatePublicIpAddress: spec.associatePublicIpAddress,
        blockDevices: spec.blockDevices.map((d) => ({ ...d, volumeId: ec2Id('vol') })),
        shutdownBehavior: spec.shutdownBehavior,
        tags: new Map(spec.tags),
        clientToken: spec.clientToken,
        userData: spec.userData,
      });
      launched.push(instance);
      this.later(this.opts.bootDelayMs ?? 100, () => this.boot(instance, spec.userDataText));
    }
    if (token !== undefined) this.byClientToken.set(token, { fingerprint: print, reservationId, instanceIds: launched.map((i) => i.instanceId) });
    return runInstancesXml(requestId, reservationId, launched);
  }

  private describeInstances(p: QueryParams, requestId: string): string {
    const ids = listOf(p, 'InstanceId');
    const filters = parseFilters(p);
    const maxResultsRaw = p.get('MaxResults');
    if (maxResultsRaw !== undefined && ids.length > 0)
      throw new Ec2ApiError('InvalidParameterCombination', 'The parameter instancesSet cannot be used with the parameter maxResults');
    const maxResults = maxResultsRaw === undefined ? Infinity : Number(maxResultsRaw);
    if (maxResultsRaw !== undefined && !(Number.isInteger(maxResults) && maxResults >= 5 && maxResults <= 1000)) throw new Ec2ApiError('InvalidParameterValue', `Value ( ${maxResultsRaw} ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.`);

    let candidates: EmulatedInstance[];
    if (ids.length > 0) {
      this.checkIds(ids);
      candidates = ids.map((id) => this.byId.get(id)!);
    } else {
      candidates = this.instances();
    }
    const matching = candidates.filter((i) => matchesFilters(i, filters));

    const start = p.has('NextToken') ? decodeNextToken(p.get('NextToken')!) : 0;
    const page = matching.slice(start, start + maxResults);
    const nextToken = start + page.length < matching.length ? Buffer.from(String(start + page.length)).toString('base64') : undefined;

    const reservations = new Map<string, EmulatedInstance[]>();
    for (const i of page) reservations.set(i.reservationId, [...(reservations.get(i.reservationId) ?? []), i]);
    return describeInstancesXml(
      requestId,
      [...reservations].map(([reservationId, instances]) => ({ reservationId, instances })),
      nextToken,
    );
  }

  private terminateInstances(p: QueryParams, requestId: string): string {
    const ids = listOf(p, 'InstanceId');
    if (ids.length === 0) throw new Ec2ApiError('MissingParameter', 'The request must contain the parameter InstanceId');
    this.checkIds(ids);
    const changes = ids.map((id) => {
      const instance = this.byId.get(id)!;
      const previous = instance.state;
      if (previous !== 'terminated' && previous !== 'shutting-down') this.terminate(instance);
      return { instanceId: id, previous, current: instance.state };
    });
    return terminateInstancesXml(requestId, changes);
  }

  /** EC2 refuses the whole request if any id is malformed or unknown. */
  private checkIds(ids: readonly string[]): void {
    const malformed = ids.find((id) => !INSTANCE_ID_RE.test(id));
    if (malformed !== undefined) throw new Ec2ApiError('InvalidInstanceID.Malformed', `Invalid id: "${malformed}"`);
    const unknown = ids.filter((id) => !this.byId.has(id));
    if (unknown.length === 1) throw new Ec2ApiError('InvalidInstanceID.NotFound', `The instance ID '${unknown[0]}' does not exist`);
    if (unknown.length > 1) throw new Ec2ApiError('InvalidInstanceID.NotFound', `The instance IDs '${unknown.join(', ')}' do not exist`);
  }

  // ---- instance lifecycle ----

  private newInstance(
    reservationId: string,
    fields: Omit<EmulatedInstance, 'instanceId' | 'reservationId' | 'launchTime' | 'state' | 'privateIpAddress' | 'consoleOutput'>,
  ): EmulatedInstance {
    const n = this.byId.size + 1;
    const instance: EmulatedInstance = {
      ...fields,
      instanceId: ec2Id('i'),
      reservationId,
      launchTime: new Date(Math.floor(Date.now() / 1000) * 1000),
      state: 'pending',
      privateIpAddress: `10.0.${(n >> 8) & 255}.${n & 255}`,
      consoleOutput: '',
    };
    this.byId.set(instance.instanceId, instance);
    return instance;
  }

  private liveCount(): number {
    return this.instances().filter((i) => i.state === 'pending' || i.state === 'running').length;
  }

  private boot(instance: EmulatedInstance, userDataText: string | undefined): void {
    if (instance.state !== 'pending') return;
    instance.state = 'running';
    if (!this.opts.runWorker) return;
    let env: Record<string, string>;
    try {
      env = workerEnvFromIgnition(userDataText ?? '');
    } catch (err) {
      // A real machine with unusable ignition never starts the builder; it just sits there.
      instance.consoleOutput += `ignition: cannot read the worker environment: ${(err as Error).message}\n`;
      return;
    }
    const child = this.opts.runWorker(env, instance);
    instance.process = child;
    for (const stream of [child.stdout, child.stderr]) stream?.on('data', (d: Buffer) => (instance.consoleOutput += d.toString('utf8')));
    child.once('error', (err) => {
      instance.consoleOutput += `worker failed to start: ${err.message}\n`;
      this.workerGone(instance);
    });
    child.once('exit', () => this.workerGone(instance));
  }

  /** The builder unit ended: the machine powers off (quay-builder's ExecStopPost). */
  private workerGone(instance: EmulatedInstance): void {
    if (instance.state === 'shutting-down') this.later(this.opts.shutdownDelayMs ?? 100, () => (instance.state = 'terminated'));
    else if (instance.state === 'running' || instance.state === 'pending') this.shutDown(instance, 'Client.InstanceInitiatedShutdown');
  }

  private shutDown(instance: EmulatedInstance, reason: string): void {
    instance.stateReason = reason;
    const [going, gone]: [InstanceStateName, InstanceStateName] = instance.shutdownBehavior === 'terminate' ? ['shutting-down', 'terminated'] : ['stopping', 'stopped'];
    instance.state = going;
    this.later(this.opts.shutdownDelayMs ?? 100, () => (instance.state = gone));
  }

  private terminate(instance: EmulatedInstance): void {
    instance.state = 'shutting-down';
    instance.stateReason = 'Client.UserInitiatedShutdown';
    const child = instance.process;
    if (!child || child.exitCode !== null || child.signalCode !== null) {
      this.later(this.opts.shutdownDelayMs ?? 100, () => (instance.state = 'terminated'));
      return;
    }
    signalTree(child, 'SIGTERM');
    this.later(this.opts.killGraceMs ?? 2000, () => {
      if (child.exitCode === null && child.signalCode === null) signalTree(child, 'SIGKILL');
    });
  }

  private later(ms: number, fn: () => void): void {
    if (this.closed) return;
    const t = setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        resolve();
      }, ms);
      this.timers.add(t);
    });
  }
}

/** Starts an emulator on 127.0.0.1 and an ephemeral port. */
export async function startEc2Emulator(opts?: Ec2EmulatorOptions): Promise<Ec2Emulator> {
  return new Ec2Emulator(opts).start();
}

function decodeNextToken(token: string): number {
  const n = Number(Buffer.from(token, 'base64').toString('utf8'));
  if (!Number.isInteger(n) || n < 0) throw new Ec2ApiError('InvalidParameterValue', `Invalid value '${token}' for nextToken`);
  return n;
}

/** Signals the worker's process group when it leads one (spawned detached), else the process alone. */
function signalTree(child: ChildProcess, sig: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, sig);
    return;
  } catch {
    // not a group leader
  }
  try {
    child.kill(sig);
  } catch {
    // already gone
  }
}
