import { spawn, type ChildProcess } from 'node:child_process';
import {
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  TerminateInstancesCommand,
  type RunInstancesCommandInput,
} from '@aws-sdk/client-ec2';
import { afterEach, describe, expect, it } from 'vitest';
import type { Ec2ExecutorConfig } from '../../../src/config/config-types.js';
import { Ec2Executor } from '../../../src/executors/ec2/ec2-executor.js';
import { workerIgnitionJson } from '../../../src/executors/ignition/worker-ignition.js';
import { startEc2Emulator, type Ec2Emulator, type Ec2EmulatorOptions, type EmulatedInstance } from '../../emulators/ec2/ec2-emulator.js';
import { REGISTRATION_TOKEN, startRecordingManager, type RecordingManager } from '../../worker/recording-manager.js';
import { WORKER_FROM_SOURCE } from '../../worker/worker-from-source.js';
import { exampleEc2Config, EXAMPLE_ACCESS_KEY, EXAMPLE_SECRET_KEY, testContext, type LogLine } from './ec2-fixture.js';

let emu: Ec2Emulator | undefined;
let client: EC2Client | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  client?.destroy();
  client = undefined;
  for (const c of cleanups.splice(0)) await c();
  await emu?.close();
  emu = undefined;
});

async function emulator(opts: Ec2EmulatorOptions = {}): Promise<Ec2Emulator> {
  emu = await startEc2Emulator({ bootDelayMs: 20, shutdownDelayMs: 20, ...opts });
  client = new EC2Client({
    region: 'us-east-1',
    endpoint: emu.endpoint,
    credentials: { accessKeyId: emu.accessKeyId, secretAccessKey: emu.secretAccessKey },
    maxAttempts: 1,
  });
  return emu;
}

const launch = (over: Partial<RunInstancesCommandInput> = {}) =>
  client!.send(new RunInstancesCommand({ ImageId: 'ami-0123456789abcdef0', InstanceType: 't3.small', MinCount: 1, MaxCount: 1, ...over }));

async function codeOf(p: Promise<unknown>): Promise<{ code: string; status?: number }> {
  const err = (await p.then(
    () => undefined,
    (e: unknown) => e,
  )) as { name: string; $metadata?: { httpStatusCode?: number } } | undefined;
  if (!err) throw new Error('expected the call to fail');
  return { code: err.name, status: err.$metadata?.httpStatusCode };
}

/** A hand-made request (no SDK), for what the SDK would never send. */
async function raw(body: string, headers: Record<string, string> = {}): Promise<{ status: number; text: string }> {
  const res = await fetch(emu!.endpoint, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers } });
  return { status: res.status, text: await res.text() };
}

/** A syntactically valid SigV4 header for the emulator's key (the emulator must not verify the signature). */
function fakeSignature(): Record<string, string> {
  const now = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+/, '');
  return {
    'x-amz-date': now,
    authorization: `AWS4-HMAC-SHA256 Credential=${emu!.accessKeyId}/${now.slice(0, 8)}/us-east-1/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`,
  };
}

describe('EC2 emulator: wire format', () => {
  it('answers in EC2 XML with the 2016-11-15 namespace and a request id', async () => {
    await emulator({ verifySignatures: false });
    const ok = await raw('Action=DescribeInstances&Version=2016-11-15', fakeSignature());
    expect(ok.status).toBe(200);
    expect(ok.text).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<DescribeInstancesResponse xmlns="http:\/\/ec2.amazonaws.com\/doc\/2016-11-15\/"><requestId>[0-9a-f-]{36}<\/requestId><reservationSet><\/reservationSet>/);

    const bad = await raw('Action=TerminateInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0', fakeSignature());
    expect(bad.status).toBe(400);
    expect(bad.text).toMatch(
      /<Response><Errors><Error><Code>InvalidInstanceID.NotFound<\/Code><Message>The instance ID 'i-0123456789abcdef0' does not exist<\/Message><\/Error><\/Errors><RequestID>[0-9a-f-]{36}<\/RequestID><\/Response>$/,
    );
  });

  it('refuses unknown actions, a missing Version, missing counts', async () => {
    await emulator({ verifySignatures: false });
    expect((await raw('Action=RebootInstances&Version=2016-11-15', fakeSignature())).text).toContain('<Code>InvalidAction</Code>');
    expect((await raw('Action=DescribeInstances', fakeSignature())).text).toContain('<Code>MissingParameter</Code>');
    const noCount = await raw('Action=RunInstances&Version=2016-11-15&ImageId=ami-0123456789abcdef0&MaxCount=1', fakeSignature());
    expect(noCount.status).toBe(400);
    expect(noCount.text).toContain('The request must contain the parameter MinCount');
  });
});

describe('EC2 emulator: SigV4', () => {
  it('accepts the SDK signature made with the right secret', async () => {
    await emulator();
    await expect(client!.send(new DescribeInstancesCommand({}))).resolves.toBeDefined();
    expect(emu!.requests[0]).toMatchObject({ accessKeyId: emu!.accessKeyId, region: 'us-east-1', status: 200 });
  });

  it('a wrong secret or an unknown key → AuthFailure 401; no header → MissingAuthenticationToken', async () => {
    await emulator({ credentials: { [EXAMPLE_ACCESS_KEY]: EXAMPLE_SECRET_KEY } });
    for (const credentials of [
      { accessKeyId: EXAMPLE_ACCESS_KEY, secretAccessKey: 'wrong' },
      { accessKeyId: 'AKIANOBODY', secretAccessKey: EXAMPLE_SECRET_KEY },
    ]) {
      const other = new EC2Client({ region: 'us-east-1', endpoint: emu!.endpoint, credentials, maxAttempts: 1 });
      expect(await codeOf(other.send(new DescribeInstancesCommand({})))).toEqual({ code: 'AuthFailure', status: 401 });
      other.destroy();
    }
    expect((await raw('Action=DescribeInstances&Version=2016-11-15')).text).toContain('<Code>MissingAuthenticationToken</Code>');
    expect((await raw('Action=DescribeInstances&Version=2016-11-15', { authorization: 'Bearer abc' })).text).toContain('<Code>IncompleteSignature</Code>');
  });

  it('a signature from a skewed clock → RequestExpired', async () => {
    await emulator();
    const skewed = new EC2Client({
      region: 'us-east-1',
      endpoint: emu!.endpoint,
      credentials: { accessKeyId: emu!.accessKeyId, secretAccessKey: emu!.secretAccessKey },
      maxAttempts: 1,
      systemClockOffset: -20 * 60_000,
    });
    expect((await codeOf(skewed.send(new DescribeInstancesCommand({})))).code).toBe('RequestExpired');
    skewed.destroy();
  });
});

describe('EC2 emulator: RunInstances', () => {
  it('launches i-<17 hex> instances that go pending → running', async () => {
    await emulator();
    const out = await launch({ TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'k', Value: 'v' }] }] });
    const [instance] = out.Instances!;
    expect(instance.InstanceId).toMatch(/^i-[0-9a-f]{17}$/);
    expect(out.ReservationId).toMatch(/^r-[0-9a-f]{17}$/);
    expect(instance.State).toEqual({ Code: 0, Name: 'pending' });
    await emu!.waitForState(instance.InstanceId!, 'running');
    const described = await client!.send(new DescribeInstancesCommand({ InstanceIds: [instance.InstanceId!] }));
    expect(described.Reservations![0].Instances![0]).toMatchObject({ State: { Code: 16, Name: 'running' }, Tags: [{ Key: 'k', Value: 'v' }] });
  });

  it('same ClientToken and parameters → the same reservation; other parameters → IdempotentParameterMismatch', async () => {
    await emulator();
    const a = await launch({ ClientToken: 'tok-1' });
    const b = await launch({ ClientToken: 'tok-1' });
    expect(b.ReservationId).toBe(a.ReservationId);
    expect(b.Instances![0].InstanceId).toBe(a.Instances![0].InstanceId);
    expect(emu!.instances()).toHaveLength(1);
    expect(await codeOf(launch({ ClientToken: 'tok-1', InstanceType: 't3.large' }))).toEqual({ code: 'IdempotentParameterMismatch', status: 400 });
    await launch({ ClientToken: 'tok-2' });
    expect(emu!.instances()).toHaveLength(2);
  });

  it('a ClientToken whose instance was terminated → IdempotentInstanceTerminated', async () => {
    await emulator();
    const id = (await launch({ ClientToken: 'tok-t' })).Instances![0].InstanceId!;
    await client!.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await emu!.waitForState(id, 'terminated');
    expect(await codeOf(launch({ ClientToken: 'tok-t' }))).toEqual({ code: 'IdempotentInstanceTerminated', status: 400 });
  });

  it('refuses what EC2 refuses', async () => {
    await emulator({ images: ['ami-0123456789abcdef0'], keyPairs: ['builders'] });
    expect(await codeOf(launch({ ImageId: 'ami-0fffffffffffffff0' }))).toEqual({ code: 'InvalidAMIID.NotFound', status: 400 });
    expect((await codeOf(launch({ ImageId: 'fedora' }))).code).toBe('InvalidAMIID.Malformed');
    expect((await codeOf(launch({ ImageId: undefined }))).code).toBe('MissingParameter');
    expect((await codeOf(launch({ KeyName: 'nope' }))).code).toBe('InvalidKeyPair.NotFound');
    expect((await codeOf(launch({ MinCount: 2, MaxCount: 1 }))).code).toBe('InvalidParameterValue');
    expect((await codeOf(launch({ InstanceType: 'huge' as never }))).code).toBe('InvalidParameterValue');
    expect((await codeOf(launch({ UserData: 'not base64!' }))).code).toBe('InvalidParameterValue');
    expect((await codeOf(launch({ UserData: Buffer.alloc(16385, 'x').toString('base64') }))).code).toBe('InvalidParameterValue');
    expect((await codeOf(launch({ ClientToken: 'x'.repeat(65) }))).code).toBe('InvalidParameterValue');
    expect((await codeOf(launch({ BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { VolumeSize: 0 } }] }))).code).toBe('InvalidParameterValue');
    expect((await codeOf(launch({ TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: 'aws:x', Value: 'v' }] }] }))).code).toBe('InvalidParameterValue');
    expect(
      (await codeOf(launch({ SecurityGroupIds: ['sg-1'], NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: 'subnet-1', Groups: ['sg-2'] }] }))).code,
    ).toBe('InvalidParameterCombination');
    expect((await codeOf(launch({ NetworkInterfaces: [{ DeviceIndex: 0, SubnetId: 'net-1' }] }))).code).toBe('InvalidSubnetID.Malformed');
    expect(emu!.instances()).toHaveLength(0);
  });

  it('instanceLimit → InstanceLimitExceeded', async () => {
    await emulator({ instanceLimit: 2 });
    await launch({ MinCount: 1, MaxCount: 5 });
    expect(emu!.instances()).toHaveLength(2); // up to MaxCount, as far as the limit allows
    expect(await codeOf(launch())).toEqual({ code: 'InstanceLimitExceeded', status: 400 });
  });
});

describe('EC2 emulator: DescribeInstances and TerminateInstances', () => {
  it('filters by tag (with wildcards), tag-key, state and id', async () => {
    await emulator();
    const a = emu!.seedInstance({ tags: { team: 'builds-east', role: 'builder' } });
    const b = emu!.seedInstance({ tags: { team: 'builds-west' }, state: 'stopped' });
    emu!.seedInstance({ tags: { other: 'x' } });
    const ids = async (Filters: Array<{ Name: string; Values: string[] }>) =>
      (await client!.send(new DescribeInstancesCommand({ Filters }))).Reservations!.flatMap((r) => r.Instances!.map((i) => i.InstanceId)).sort();
    expect(await ids([{ Name: 'tag:team', Values: ['builds-*'] }])).toEqual([a.instanceId, b.instanceId].sort());
    expect(await ids([{ Name: 'tag:team', Values: ['builds-?ast'] }])).toEqual([a.instanceId]);
    expect(await ids([{ Name: 'tag-key', Values: ['role'] }])).toEqual([a.instanceId]);
    expect(await ids([{ Name: 'tag:team', Values: ['builds-*'] }, { Name: 'instance-state-name', Values: ['stopped'] }])).toEqual([b.instanceId]);
    // EC2's state names are lowercase: "Running" matches nothing (Quay's Q5).
    expect(await ids([{ Name: 'instance-state-name', Values: ['Running'] }])).toEqual([]);
    expect(await ids([{ Name: 'instance-id', Values: [b.instanceId] }])).toEqual([b.instanceId]);
    expect((await codeOf(client!.send(new DescribeInstancesCommand({ Filters: [{ Name: 'colour', Values: ['red'] }] })))).code).toBe('InvalidParameterValue');
  });

  it('unknown and malformed instance ids', async () => {
    await emulator();
    expect(await codeOf(client!.send(new DescribeInstancesCommand({ InstanceIds: ['i-0123456789abcdef0'] })))).toEqual({ code: 'InvalidInstanceID.NotFound', status: 400 });
    expect(await codeOf(client!.send(new TerminateInstancesCommand({ InstanceIds: ['instance-1'] })))).toEqual({ code: 'InvalidInstanceID.Malformed', status: 400 });
    expect((await codeOf(client!.send(new TerminateInstancesCommand({ InstanceIds: [] })))).code).toBe('MissingParameter');
  });

  it('terminate: running → shutting-down → terminated, still described afterwards', async () => {
    await emulator();
    const id = (await launch()).Instances![0].InstanceId!;
    await emu!.waitForState(id, 'running');
    const out = await client!.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(out.TerminatingInstances).toEqual([{ InstanceId: id, PreviousState: { Code: 16, Name: 'running' }, CurrentState: { Code: 32, Name: 'shutting-down' } }]);
    await emu!.waitForState(id, 'terminated');
    const again = await client!.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    expect(again.TerminatingInstances![0]).toMatchObject({ PreviousState: { Name: 'terminated' }, CurrentState: { Name: 'terminated' } });
  });
});

describe('EC2 emulator: faults', () => {
  it('errors at their real status, limited by action and count', async () => {
    await emulator();
    emu!.noCapacity({ action: 'RunInstances', times: 1 });
    expect(await codeOf(launch())).toEqual({ code: 'InsufficientInstanceCapacity', status: 500 });
    await expect(launch()).resolves.toBeDefined();
    emu!.throttle({ action: 'DescribeInstances' });
    expect(await codeOf(client!.send(new DescribeInstancesCommand({})))).toEqual({ code: 'RequestLimitExceeded', status: 503 });
    await expect(client!.send(new TerminateInstancesCommand({ InstanceIds: [emu!.instances()[0].instanceId] }))).resolves.toBeDefined();
    emu!.clearFaults();
    emu!.internalError({ times: 1 });
    expect(await codeOf(client!.send(new DescribeInstancesCommand({})))).toEqual({ code: 'InternalError', status: 500 });
    emu!.authFailure({ times: 1 });
    expect(await codeOf(client!.send(new DescribeInstancesCommand({})))).toEqual({ code: 'AuthFailure', status: 401 });
    await expect(client!.send(new DescribeInstancesCommand({}))).resolves.toBeDefined();
  });

  it('refuses connections until told to accept them again, on the same port', async () => {
    await emulator();
    const port = emu!.port;
    await emu!.refuseConnections();
    expect(await client!.send(new DescribeInstancesCommand({})).catch((e: { code?: string }) => e.code)).toBe('ECONNREFUSED');
    await emu!.acceptConnections();
    expect(emu!.port).toBe(port);
    await expect(client!.send(new DescribeInstancesCommand({}))).resolves.toBeDefined();
  });
});

/** A worker stand-in: reports its environment on stdout, then waits for SIGTERM or exits after `lifeMs`. */
function standInWorker(lifeMs?: number): (env: Record<string, string>, instance: EmulatedInstance) => ChildProcess {
  const script = `
    process.stdout.write(JSON.stringify({ TOKEN: process.env.TOKEN, SERVER: process.env.SERVER, BUILD_UUID: process.env.BUILD_UUID }) + '\\n');
    process.on('SIGTERM', () => process.exit(0));
    ${lifeMs === undefined ? 'setInterval(() => {}, 60_000);' : `setTimeout(() => process.exit(3), ${lifeMs});`}
  `;
  return (env) => spawn(process.execPath, ['-e', script], { env: { ...env, PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
}

function userDataFor(buildId: string, token: string, server: string, config: Ec2ExecutorConfig): string {
  return Buffer.from(workerIgnitionJson({ buildId, token, server, config })).toString('base64');
}

describe('EC2 emulator: booting workers', () => {
  it('runs a process with the environment from the ignition user data; its exit terminates the instance', async () => {
    const config = await exampleEc2Config('http://unused');
    await emulator({ runWorker: standInWorker(200) });
    const id = (await launch({ UserData: userDataFor('b-1', 'the-token', 'mgr.example:55443', config), InstanceInitiatedShutdownBehavior: 'terminate' })).Instances![0].InstanceId!;
    await emu!.waitForState(id, 'running');
    await emu!.waitForState(id, 'shutting-down');
    await emu!.waitForState(id, 'terminated');
    const instance = emu!.instance(id)!;
    expect(JSON.parse(instance.consoleOutput.split('\n')[0])).toEqual({ TOKEN: 'the-token', SERVER: 'mgr.example:55443', BUILD_UUID: 'b-1' });
    expect(instance.stateReason).toBe('Client.InstanceInitiatedShutdown');
  });

  it("with InstanceInitiatedShutdownBehavior=stop the instance stops when the worker exits", async () => {
    const config = await exampleEc2Config('http://unused');
    await emulator({ runWorker: standInWorker(50) });
    const id = (await launch({ UserData: userDataFor('b-2', 't', 's:1', config) })).Instances![0].InstanceId!;
    await emu!.waitForState(id, 'stopped');
  });

  it('TerminateInstances kills the worker process', async () => {
    const config = await exampleEc2Config('http://unused');
    await emulator({ runWorker: standInWorker() });
    const id = (await launch({ UserData: userDataFor('b-3', 't', 's:1', config) })).Instances![0].InstanceId!;
    await emu!.waitForState(id, 'running');
    await new Promise((r) => setTimeout(r, 100));
    const child = emu!.instance(id)!.process!;
    expect(child.exitCode).toBeNull();
    await client!.send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await emu!.waitForState(id, 'terminated');
    expect(child.exitCode ?? child.signalCode).not.toBeNull();
  });

  it('boots the real reference worker through the EC2 executor: it registers with the token from the user data', async () => {
    const manager: RecordingManager = await startRecordingManager({ pack: { repository: 'ec2/boot', tagNames: ['latest'] } });
    cleanups.push(() => manager.stop());
    const workers: ChildProcess[] = [];
    await emulator({
      credentials: { [EXAMPLE_ACCESS_KEY]: EXAMPLE_SECRET_KEY },
      // The "machine image": the reference worker, plaintext gRPC to the loopback manager.
      runWorker: (env) => {
        const child = spawn(process.execPath, [WORKER_FROM_SOURCE], { env: { ...env, INSECURE: 'true', PATH: process.env.PATH ?? '' }, stdio: ['ignore', 'pipe', 'pipe'] });
        workers.push(child);
        return child;
      },
    });
    const lines: LogLine[] = [];
    const executor = new Ec2Executor(await exampleEc2Config(emu!.endpoint), testContext(lines, { grpcAddress: manager.address }));
    cleanups.push(() => executor.close());
    const id = await executor.start({ buildId: 'ec2-boot', attempt: 1, token: REGISTRATION_TOKEN });

    const deadline = Date.now() + 20_000;
    while (!manager.rec.calls.some((c) => c.startsWith('SetPhase')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(manager.rec.calls).toContain('RegisterBuildJob');
    expect(manager.rec.calls.some((c) => c.startsWith('SetPhase'))).toBe(true); // registration was accepted
    await executor.stop({ buildId: 'ec2-boot', attempt: 1, executionId: id });
    await emu!.waitForState(id, 'terminated', 15_000);
    expect(workers[0].exitCode ?? workers[0].signalCode).not.toBeNull();
  });
});
