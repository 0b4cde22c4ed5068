import { afterEach, describe, expect, it } from 'vitest';
import { BuildmanError } from '../../../src/errors/buildman-error.js';
import { ec2Harness, EXAMPLE_SECRET_KEY, logText, TOKEN, type Ec2Harness } from './ec2-fixture.js';

const BUILD = '0b3c9a57-6a0e-4d8e-9c1f-5e2d7f4a8b90';
const start = (h: Ec2Harness, attempt = 1) => h.executor.start({ buildId: BUILD, attempt, token: TOKEN });

let h: Ec2Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function failure(p: Promise<unknown>): Promise<BuildmanError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BuildmanError);
  return err as BuildmanError;
}

describe('EC2 failures map to the error family', () => {
  it('connection refused → retryable, for start, stop, count and list', async () => {
    h = await ec2Harness({ executor: { maxAttempts: 1 } });
    await h.emulator.refuseConnections();
    for (const call of [start(h), h.executor.stop({ buildId: BUILD, attempt: 1 }), h.executor.runningCount(), h.executor.listWorkers()]) {
      const err = await failure(call);
      expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_UNREACHABLE' });
      expect(err.message).toMatch(/^executor EC2Executor \(ec2\): .*ECONNREFUSED/);
    }
    await h.emulator.acceptConnections();
    expect(await h.executor.runningCount()).toBe(0);
  });

  it('no answer within the request timeout → retryable', async () => {
    h = await ec2Harness({ executor: { requestTimeoutMs: 200, maxAttempts: 1 } });
    h.emulator.delay(2000);
    const begun = Date.now();
    const err = await failure(h.executor.runningCount());
    expect(Date.now() - begun).toBeLessThan(1500);
    expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_UNREACHABLE' });
    expect(err.message).toMatch(/did not answer in time/);
  });

  it('500 InternalError → retryable; the SDK retries once, and a single blip is absorbed', async () => {
    h = await ec2Harness();
    h.emulator.internalError({ action: 'RunInstances' });
    expect(await failure(start(h))).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_UNAVAILABLE' });
    expect(h.emulator.calls('RunInstances')).toHaveLength(2);

    h.emulator.clearFaults();
    h.emulator.internalError({ action: 'RunInstances', times: 1 });
    await expect(start(h, 2)).resolves.toMatch(/^i-/);
  });

  it('RequestLimitExceeded (503) → retryable, throttled', async () => {
    h = await ec2Harness({ executor: { maxAttempts: 1 } });
    h.emulator.throttle();
    const err = await failure(start(h));
    expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_THROTTLED' });
    expect(h.emulator.calls('RunInstances')[0]).toMatchObject({ status: 503, errorCode: 'RequestLimitExceeded' });
  });

  it('a wrong secret key → AuthFailure (401) → retryable, naming the keys to check', async () => {
    h = await ec2Harness({ config: { AWS_SECRET_KEY: 'not-the-secret' }, executor: { maxAttempts: 1 } });
    const err = await failure(start(h));
    expect(h.emulator.calls('RunInstances')[0]).toMatchObject({ status: 401, errorCode: 'AuthFailure' });
    expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_AUTH' });
    expect(err.message).toContain('AWS_ACCESS_KEY/AWS_SECRET_KEY');
    expect(h.emulator.instances()).toHaveLength(0);
  });

  it('an unknown access key and UnauthorizedOperation (403) → retryable auth failures', async () => {
    h = await ec2Harness({ config: { AWS_ACCESS_KEY: 'AKIAUNKNOWN' }, executor: { maxAttempts: 1 } });
    expect(await failure(h.executor.runningCount())).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_AUTH' });
    await h.close();

    h = await ec2Harness({ executor: { maxAttempts: 1 } });
    h.emulator.inject({ kind: 'error', code: 'UnauthorizedOperation' }, { action: 'RunInstances' });
    expect(await failure(start(h))).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_AUTH' });
    expect(h.emulator.calls('RunInstances')[0].status).toBe(403);
  });

  it('InsufficientInstanceCapacity (500) → capacity', async () => {
    h = await ec2Harness({ executor: { maxAttempts: 1 } });
    h.emulator.noCapacity();
    const err = await failure(start(h));
    expect(h.emulator.calls('RunInstances')[0]).toMatchObject({ status: 500, errorCode: 'InsufficientInstanceCapacity' });
    expect(err).toMatchObject({ kind: 'capacity', code: 'EXECUTOR_CAPACITY' });
    expect(err.message).toContain('EC2_INSTANCE_TYPE');
  });

  it('InstanceLimitExceeded and VcpuLimitExceeded → capacity', async () => {
    h = await ec2Harness({ emulator: { instanceLimit: 1 }, executor: { maxAttempts: 1 } });
    await start(h, 1);
    const err = await failure(start(h, 2));
    expect(h.emulator.calls('RunInstances')[1]).toMatchObject({ status: 400, errorCode: 'InstanceLimitExceeded' });
    expect(err).toMatchObject({ kind: 'capacity' });
    expect(err.message).toMatch(/quota/);

    h.emulator.inject({ kind: 'error', code: 'VcpuLimitExceeded' }, { action: 'RunInstances' });
    expect(await failure(start(h, 3))).toMatchObject({ kind: 'capacity' });
  });

  it('InvalidParameterValue (a bad instance type) → permanent, naming the key', async () => {
    h = await ec2Harness({ config: { EC2_INSTANCE_TYPE: 'Not A Type' } });
    const err = await failure(start(h));
    expect(h.emulator.calls('RunInstances')).toHaveLength(1); // not retried
    expect(h.emulator.calls('RunInstances')[0].errorCode).toBe('InvalidParameterValue');
    expect(err).toMatchObject({ kind: 'permanent', code: 'EXECUTOR_REJECTED' });
    expect(err.message).toContain('EC2_INSTANCE_TYPE');
  });

  it('InvalidAMIID.NotFound and .Malformed → permanent, naming COREOS_AMI', async () => {
    h = await ec2Harness({ emulator: { images: ['ami-0aaaaaaaaaaaaaaaa'] } });
    let err = await failure(start(h));
    expect(h.emulator.calls('RunInstances')[0].errorCode).toBe('InvalidAMIID.NotFound');
    expect(err).toMatchObject({ kind: 'permanent' });
    expect(err.message).toContain('COREOS_AMI');
    await h.close();

    h = await ec2Harness({ config: { COREOS_AMI: 'coreos-latest' } });
    err = await failure(start(h));
    expect(h.emulator.calls('RunInstances')[0].errorCode).toBe('InvalidAMIID.Malformed');
    expect(err).toMatchObject({ kind: 'permanent' });
  });

  it('InvalidKeyPair.NotFound → permanent, naming EC2_KEY_NAME', async () => {
    h = await ec2Harness({ emulator: { keyPairs: ['builders'] } });
    const err = await failure(start(h));
    expect(err).toMatchObject({ kind: 'permanent' });
    expect(err.message).toContain('EC2_KEY_NAME');
  });

  it('a reset connection → retryable', async () => {
    h = await ec2Harness({ executor: { maxAttempts: 1 } });
    h.emulator.inject({ kind: 'reset' });
    expect(await failure(h.executor.listWorkers())).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_UNREACHABLE' });
  });

  it('only one of AWS_ACCESS_KEY / AWS_SECRET_KEY is a config error', async () => {
    await expect(ec2Harness({ config: { AWS_SECRET_KEY: undefined } })).rejects.toMatchObject({ kind: 'permanent', code: 'INVALID_CONFIG' });
  });
});

describe('secrets', () => {
  it('no AWS secret key, registration token or user data in any log line or error', async () => {
    h = await ec2Harness({ executor: { maxAttempts: 1 } });
    const errors: unknown[] = [];
    const id = await start(h, 1);
    await start(h, 1);
    await start(h, 2).then((x) => h!.executor.stop({ buildId: BUILD, attempt: 2, executionId: x }));
    await h.executor.stop({ buildId: BUILD, attempt: 1, executionId: id });
    await h.executor.stop({ buildId: BUILD, attempt: 3 });
    await h.executor.runningCount();
    await h.executor.listWorkers();
    for (const code of ['AuthFailure', 'InvalidParameterValue', 'InsufficientInstanceCapacity', 'InternalError']) {
      h.emulator.inject({ kind: 'error', code }, { times: 1 });
      await start(h, 9).catch((e: unknown) => errors.push(e));
    }
    await h.emulator.refuseConnections();
    await start(h, 10).catch((e: unknown) => errors.push(e));
    expect(errors).toHaveLength(5);

    const userData = h.emulator.calls('RunInstances')[0].params.get('UserData')!;
    const texts = [
      logText(h.lines),
      ...errors.map((e) => `${(e as Error).message}\n${(e as Error).stack}\n${JSON.stringify(e)}\n${JSON.stringify((e as Error).cause)}`),
    ];
    expect(h.lines.length).toBeGreaterThan(0);
    for (const text of texts) {
      expect(text).not.toContain(EXAMPLE_SECRET_KEY);
      expect(text).not.toContain(TOKEN.slice(37)); // beyond the 36 characters Quay puts in a tag
      expect(text).not.toContain(userData.slice(0, 40));
    }
  });
});
