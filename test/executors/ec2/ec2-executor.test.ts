import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { workerEnvFromIgnition } from '../../../src/executors/ignition/worker-ignition.js';
import { clientTokenFor } from '../../../src/executors/ec2/ec2-tags.js';
import { listOf, structsOf } from '../../emulators/ec2/query-params.js';
import { ec2Harness, EXAMPLE_ACCESS_KEY, GRPC_ADDRESS, INSTALLATION, TOKEN, type Ec2Harness } from './ec2-fixture.js';

const BUILD = '6f1e0c4e-3a59-4b1f-9d5e-2c7a1b0e9f11';

let h: Ec2Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

describe('Ec2Executor.start', () => {
  it('sends RunInstances with every key of the example config', async () => {
    h = await ec2Harness();
    const id = await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    expect(id).toMatch(/^i-[0-9a-f]{17}$/);

    const [call] = h.emulator.calls('RunInstances');
    const p = call.params;
    expect(call.status).toBe(200);
    expect(call.accessKeyId).toBe(EXAMPLE_ACCESS_KEY);
    expect(call.region).toBe('us-east-1');
    expect(p.get('ImageId')).toBe('ami-02545325b519192df');
    expect(p.get('InstanceType')).toBe('t2.large');
    expect(p.get('KeyName')).toBe('Some key');
    expect(p.get('MinCount')).toBe('1');
    expect(p.get('MaxCount')).toBe('1');
    expect(p.get('InstanceInitiatedShutdownBehavior')).toBe('terminate');
    expect(p.get('ClientToken')).toBe(`${BUILD}-1`);
    expect(p.get('BlockDeviceMapping.1.DeviceName')).toBe('/dev/xvda');
    expect(p.get('BlockDeviceMapping.1.Ebs.VolumeSize')).toBe('58');
    expect(p.get('BlockDeviceMapping.1.Ebs.VolumeType')).toBe('gp2');
    expect(p.get('BlockDeviceMapping.1.Ebs.DeleteOnTermination')).toBe('true');
    expect(p.get('NetworkInterface.1.DeviceIndex')).toBe('0');
    expect(p.get('NetworkInterface.1.SubnetId')).toBe('subnet-somesubnet');
    expect(listOf(p, 'NetworkInterface.1.SecurityGroupId')).toEqual(['sg-somesg']);
    expect(p.get('NetworkInterface.1.AssociatePublicIpAddress')).toBe('true');
    expect(listOf(p, 'SecurityGroupId')).toEqual([]); // EC2 refuses both at once

    const instance = h.emulator.instance(id)!;
    expect(instance.subnetId).toBe('subnet-somesubnet');
    expect(instance.blockDevices[0]).toMatchObject({ deviceName: '/dev/xvda', volumeSize: 58, volumeType: 'gp2', deleteOnTermination: true });
  });

  it('user data is base64 of the ignition that hands the worker TOKEN, SERVER and BUILD_UUID', async () => {
    h = await ec2Harness();
    await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    const ignition = Buffer.from(h.emulator.calls('RunInstances')[0].params.get('UserData')!, 'base64').toString('utf8');
    expect(JSON.parse(ignition).ignition.version).toBe('3.0.0');
    const env = workerEnvFromIgnition(ignition);
    expect(env).toMatchObject({ TOKEN, SERVER: GRPC_ADDRESS, BUILD_UUID: BUILD, REGISTRY_HOSTNAME: 'quay.example.com' });
    // The worker image and its pull login come from the example's WORKER_IMAGE/WORKER_TAG/QUAY_USERNAME.
    expect(ignition).toContain('quay.io/quay/quay-builder:master');
    expect(ignition).toContain('quayusertopullworker');
  });

  it("tags the instance with Quay's tags and ours", async () => {
    h = await ec2Harness();
    const id = await h.executor.start({ buildId: BUILD, attempt: 2, token: TOKEN });
    const p = h.emulator.calls('RunInstances')[0].params;
    const [spec] = structsOf(p, 'TagSpecification');
    expect(p.get(`${spec}.ResourceType`)).toBe('instance');
    expect(Object.fromEntries(h.emulator.instance(id)!.tags)).toEqual({
      Name: 'Quay Ephemeral Builder',
      RegistrationToken: TOKEN.slice(0, 36),
      BuildUUID: BUILD,
      'buildman:installation': INSTALLATION,
      'buildman:attempt': '2',
    });
  });

  it('puts the security groups on the instance when there is no subnet', async () => {
    h = await ec2Harness({ config: { EC2_VPC_SUBNET_ID: undefined, EC2_SECURITY_GROUP_IDS: ['sg-aaa', 'sg-bbb'], EC2_KEY_NAME: undefined } });
    await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    const p = h.emulator.calls('RunInstances')[0].params;
    expect(listOf(p, 'SecurityGroupId')).toEqual(['sg-aaa', 'sg-bbb']);
    expect(structsOf(p, 'NetworkInterface')).toEqual([]);
    expect(p.has('KeyName')).toBe(false);
  });

  it('starting the same attempt twice launches one instance (ClientToken)', async () => {
    h = await ec2Harness();
    const first = await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    const again = await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    expect(again).toBe(first);
    expect(h.emulator.instances()).toHaveLength(1);
    expect(h.emulator.calls('RunInstances')).toHaveLength(2);
    // A new attempt is a new instance.
    const next = await h.executor.start({ buildId: BUILD, attempt: 2, token: TOKEN });
    expect(next).not.toBe(first);
    expect(h.emulator.instances()).toHaveLength(2);
  });

  it('a repeated start with a fresh token adopts the instance already launched for the attempt', async () => {
    h = await ec2Harness();
    const first = await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    const again = await h.executor.start({ buildId: BUILD, attempt: 1, token: `${TOKEN}-renewed` });
    expect(again).toBe(first);
    expect(h.emulator.calls('RunInstances')[1].errorCode).toBe('IdempotentParameterMismatch');
    expect(h.emulator.instances()).toHaveLength(1);
  });

  it('a response lost to a timeout is recovered by the retry: still one instance', async () => {
    h = await ec2Harness({ executor: { requestTimeoutMs: 800, maxAttempts: 2 } });
    h.emulator.delay(2500, { action: 'RunInstances', times: 1 });
    const id = await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    expect(h.emulator.calls('RunInstances')).toHaveLength(2);
    expect(h.emulator.instances().map((i) => i.instanceId)).toEqual([id]);
  });

  it('refuses a replayed launch whose instance is already gone', async () => {
    // Shutting down long enough that the replay below surely meets that state, even on a loaded machine.
    h = await ec2Harness({ emulator: { shutdownDelayMs: 1000 } });
    const id = await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    await h.executor.stop({ buildId: BUILD, attempt: 1, executionId: id });
    // Shutting down: EC2 replays the reservation, with the instance on its way out.
    await expect(h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN })).rejects.toMatchObject({ kind: 'retryable', code: 'EC2_INSTANCE_GONE' });
    await h.emulator.waitForState(id, 'terminated');
    // Terminated: EC2 answers IdempotentInstanceTerminated, with the same token or a fresh one.
    await expect(h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN })).rejects.toMatchObject({ kind: 'retryable', code: 'EC2_INSTANCE_GONE' });
    await expect(h.executor.start({ buildId: BUILD, attempt: 1, token: `${TOKEN}-renewed` })).rejects.toMatchObject({ kind: 'retryable', code: 'EC2_INSTANCE_GONE' });
    expect(h.emulator.calls('RunInstances').map((c) => c.errorCode)).toEqual([undefined, undefined, 'IdempotentInstanceTerminated', 'IdempotentInstanceTerminated']);
    expect(h.emulator.instances()).toHaveLength(1);
  });

  it('looks the AMI up in the Fedora CoreOS stream when COREOS_AMI is unset, once an hour', async () => {
    let reads = 0;
    const stream: Server = createServer((req, res) => {
      reads++;
      if (req.url !== '/streams/stable.json') return void res.writeHead(404).end();
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ architectures: { x86_64: { images: { aws: { regions: { 'us-east-1': { image: 'ami-0fedc0de5eed5eed5' } } } } } } }));
    });
    await new Promise<void>((r) => stream.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(stream.address() as AddressInfo).port}/streams/{channel}.json`;
      h = await ec2Harness({ config: { COREOS_AMI: undefined }, executor: { coreosStreamUrl: url } });
      await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
      await h.executor.start({ buildId: BUILD, attempt: 2, token: TOKEN });
      expect(h.emulator.calls('RunInstances').map((c) => c.params.get('ImageId'))).toEqual(['ami-0fedc0de5eed5eed5', 'ami-0fedc0de5eed5eed5']);
      expect(reads).toBe(1);
      await h.close();

      h = await ec2Harness({ config: { COREOS_AMI: undefined, EC2_REGION: 'eu-north-9' }, executor: { coreosStreamUrl: url } });
      await expect(h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN })).rejects.toMatchObject({
        kind: 'permanent',
        message: expect.stringMatching(/no x86_64 AMI for region eu-north-9.*Set COREOS_AMI/),
      });
      expect(h.emulator.calls('RunInstances')).toHaveLength(0);
    } finally {
      await new Promise((r) => stream.close(r));
    }
  });

  it('an unreachable CoreOS stream is a retryable failure that says to set COREOS_AMI', async () => {
    h = await ec2Harness({ config: { COREOS_AMI: undefined }, executor: { coreosStreamUrl: 'http://127.0.0.1:1/streams/{channel}.json' } });
    await expect(h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN })).rejects.toMatchObject({
      kind: 'retryable',
      message: expect.stringContaining('set COREOS_AMI'),
    });
  });

  it('a missing WORKER_TAG is a permanent config error before any EC2 call', async () => {
    h = await ec2Harness({ config: { WORKER_TAG: undefined } });
    await expect(h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN })).rejects.toMatchObject({ kind: 'permanent', code: 'INVALID_CONFIG' });
    expect(h.emulator.requests).toHaveLength(0);
  });

  it('keeps the ClientToken within EC2 limits for long build ids', () => {
    expect(clientTokenFor(BUILD, 12)).toBe(`${BUILD}-12`);
    const long = clientTokenFor('x'.repeat(80), 1);
    expect(long.length).toBeLessThanOrEqual(64);
    expect(clientTokenFor('x'.repeat(80), 1)).toBe(long);
    expect(clientTokenFor('x'.repeat(80), 2)).not.toBe(long);
  });
});

describe('Ec2Executor.stop', () => {
  it('terminates the instance; stopping again is harmless', async () => {
    h = await ec2Harness();
    const id = await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    await h.executor.stop({ buildId: BUILD, attempt: 1, executionId: id });
    expect(h.emulator.calls('TerminateInstances')[0].params.get('InstanceId.1')).toBe(id);
    await h.emulator.waitForState(id, 'terminated');
    await h.executor.stop({ buildId: BUILD, attempt: 1, executionId: id });
  });

  it('an unknown instance id counts as already gone', async () => {
    h = await ec2Harness();
    await h.executor.stop({ buildId: BUILD, attempt: 1, executionId: 'i-0123456789abcdef0' });
    expect(h.emulator.calls('TerminateInstances')[0].errorCode).toBe('InvalidInstanceID.NotFound');
  });

  it('without an execution id, finds the attempt by its tags and terminates only that', async () => {
    h = await ec2Harness();
    const mine = await h.executor.start({ buildId: BUILD, attempt: 3, token: TOKEN });
    const otherAttempt = await h.executor.start({ buildId: BUILD, attempt: 2, token: TOKEN });
    const otherInstallation = h.emulator.seedInstance({ tags: { BuildUUID: BUILD, 'buildman:attempt': '3', 'buildman:installation': 'someone-else' } });
    await h.executor.stop({ buildId: BUILD, attempt: 3 });
    const [terminate] = h.emulator.calls('TerminateInstances');
    expect(listOf(terminate.params, 'InstanceId')).toEqual([mine]);
    expect(h.emulator.instance(mine)!.state).toBe('shutting-down');
    expect(h.emulator.instance(otherAttempt)!.state).not.toMatch(/shutting-down|terminated/);
    expect(h.emulator.instance(otherInstallation.instanceId)!.state).toBe('running');
  });

  it('without an execution id and nothing launched, does nothing', async () => {
    h = await ec2Harness();
    await h.executor.stop({ buildId: BUILD, attempt: 1 });
    expect(h.emulator.calls('TerminateInstances')).toHaveLength(0);
  });

  it('DEBUG keeps the instance', async () => {
    h = await ec2Harness({ config: { DEBUG: true } });
    const id = await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    await h.executor.stop({ buildId: BUILD, attempt: 1, executionId: id });
    await h.executor.stop({ buildId: BUILD, attempt: 1 });
    expect(h.emulator.calls('TerminateInstances')).toHaveLength(0);
    await h.emulator.waitForState(id, 'running');
    expect(h.lines.some((l) => l.msg?.includes('DEBUG'))).toBe(true);
  });
});

describe('Ec2Executor.runningCount and listWorkers', () => {
  it("counts pending and running instances by EC2's lowercase state names, only this installation's", async () => {
    h = await ec2Harness({ emulator: { bootDelayMs: 60_000 } });
    expect(await h.executor.runningCount()).toBe(0);
    const pending = await h.executor.start({ buildId: BUILD, attempt: 1, token: TOKEN });
    expect(h.emulator.instance(pending)!.state).toBe('pending');
    h.emulator.seedInstance({ state: 'running', tags: { 'buildman:installation': INSTALLATION, BuildUUID: 'b-running', 'buildman:attempt': '1' } });
    h.emulator.seedInstance({ state: 'stopped', tags: { 'buildman:installation': INSTALLATION, BuildUUID: 'b-stopped' } });
    h.emulator.seedInstance({ state: 'terminated', tags: { 'buildman:installation': INSTALLATION, BuildUUID: 'b-gone' } });
    h.emulator.seedInstance({ state: 'running', tags: { 'buildman:installation': 'other-installation' } });
    h.emulator.seedInstance({ state: 'running', tags: { Name: 'Quay Ephemeral Builder' } }); // Quay's own
    expect(await h.executor.runningCount()).toBe(2);

    const filters = h.emulator.calls('DescribeInstances').at(-1)!.params;
    const states = structsOf(filters, 'Filter').find((f) => filters.get(`${f}.Name`) === 'instance-state-name')!;
    expect(listOf(filters, `${states}.Value`).sort()).toEqual(['pending', 'running']);
  });

  it('lists every non-terminated instance of this installation as a worker', async () => {
    h = await ec2Harness();
    const id = await h.executor.start({ buildId: BUILD, attempt: 4, token: TOKEN });
    const launched = new Date('2030-01-02T03:04:05Z');
    const stopped = h.emulator.seedInstance({ state: 'stopped', launchTime: launched, tags: { 'buildman:installation': INSTALLATION, BuildUUID: 'b-stopped', 'buildman:attempt': '1' } });
    h.emulator.seedInstance({ state: 'terminated', tags: { 'buildman:installation': INSTALLATION, BuildUUID: 'b-gone' } });
    h.emulator.seedInstance({ state: 'running', tags: { 'buildman:installation': 'other-installation' } });
    const workers = await h.executor.listWorkers();
    expect(workers.sort((a, b) => a.buildId.localeCompare(b.buildId))).toEqual([
      { buildId: BUILD, attempt: 4, executionId: id, createdAt: h.emulator.instance(id)!.launchTime.getTime(), running: true },
      { buildId: 'b-stopped', attempt: 1, executionId: stopped.instanceId, createdAt: launched.getTime(), running: false },
    ]);
  });

  it('reads every page of DescribeInstances', async () => {
    h = await ec2Harness();
    for (let n = 0; n < 1203; n++) h.emulator.seedInstance({ tags: { 'buildman:installation': INSTALLATION, BuildUUID: `b-${n}` } });
    expect(await h.executor.runningCount()).toBe(1203);
    expect(h.emulator.calls('DescribeInstances')).toHaveLength(2);
  });
});
