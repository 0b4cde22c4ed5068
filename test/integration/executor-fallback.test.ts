import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { KubernetesExecutor } from '../../src/executors/kubernetes/kubernetes-executor.js';
import type { KubernetesExecutorConfig } from '../../src/config/config-types.js';
import { PACKAGE_ROOT } from '../../src/util/package-root.js';
import { startEc2Emulator, type Ec2Emulator } from '../emulators/ec2/ec2-emulator.js';
import { DEFAULT_EMULATOR_TOKEN, KubeApiEmulator } from '../emulators/kubernetes/kube-api-emulator.js';
import { fileLines, startFixture, urlBuild, type Fixture } from '../helpers/manager-fixture.js';

const WORKER = join(PACKAGE_ROOT, 'test/fixtures/scripted-worker.mjs');
const lines = fileLines;

/**
 * The seed's example config — a Kubernetes (VM) executor, then EC2 — pointed at the emulators.
 * The emulators boot each worker as a real process with the environment the Job or the instance's
 * user data carries, and the worker talks gRPC to the manager.
 */
function exampleConfig(k8s: KubeApiEmulator, ec2: Ec2Emulator, extra: { manager?: string; ec2SetupTime?: number; backoff?: number } = {}): string {
  return `ALLOWED_WORKER_COUNT: 10
BUILDMAN_RETRY_BACKOFF_SECONDS: ${extra.backoff ?? 0}
BUILDMAN_ORPHAN_SWEEP_SECONDS: 1
BUILDMAN_ORPHAN_GRACE_SECONDS: 1
${extra.manager ?? ''}
EXECUTORS:
- EXECUTOR: kubernetes
  NAME: openshift
  QUAY_USERNAME: quayusertopullworker
  QUAY_PASSWORD: quaypass
  WORKER_IMAGE: quay.io/quay/quay-builder
  WORKER_TAG: master
  SETUP_TIME: 180
  MINIMUM_RETRY_THRESHOLD: 1
  BUILDER_VM_CONTAINER_IMAGE: quay.io/quay/quay-builder-qemu-fedoracoreos:stable
  VERIFY_TLS: true
  K8S_API_TLS_CA: ${k8s.caFile}
  K8S_API_SERVER: ${k8s.address}
  K8S_API_TIMEOUT: 3
  VOLUME_SIZE: 8G
  KUBERNETES_DISTRIBUTION: openshift
  CONTAINER_MEMORY_LIMITS: 5120Mi
  CONTAINER_CPU_LIMITS: 1000m
  CONTAINER_MEMORY_REQUEST: 3968Mi
  CONTAINER_CPU_REQUEST: 500m
  NODE_SELECTOR_LABEL_KEY: beta.kubernetes.io/instance-type
  NODE_SELECTOR_LABEL_VALUE: n1-standard-4
  SERVICE_ACCOUNT_NAME: some-sa
  SERVICE_ACCOUNT_TOKEN: ${DEFAULT_EMULATOR_TOKEN}
- EXECUTOR: ec2
  QUAY_USERNAME: quayusertopullworker
  QUAY_PASSWORD: quaypass
  WORKER_IMAGE: quay.io/quay/quay-builder
  WORKER_TAG: master
  SETUP_TIME: ${extra.ec2SetupTime ?? 180}
  MINIMUM_RETRY_THRESHOLD: 0
  EC2_REGION: us-east-1
  EC2_ENDPOINT: ${ec2.endpoint}
  COREOS_AMI: ami-02545325b519192df
  AWS_ACCESS_KEY: some-key
  AWS_SECRET_KEY: some-secret
  EC2_INSTANCE_TYPE: t2.large
  EC2_VPC_SUBNET_ID: subnet-somesubnet
  EC2_SECURITY_GROUP_IDS:
  - sg-somesg
  EC2_KEY_NAME: Some key
  BLOCK_DEVICE_SIZE: 58`;
}

describe('Kubernetes and EC2 executors through the manager, against the emulators', () => {
  let fx: Fixture | undefined;
  let k8s: KubeApiEmulator | undefined;
  let ec2: Ec2Emulator | undefined;
  let dir: string;
  afterEach(async () => {
    await fx?.close();
    await k8s?.close();
    await ec2?.close();
    fx = k8s = ec2 = undefined;
  });

  /** Emulators whose machines run the scripted worker `script`; every boot is logged to `starts`. */
  async function emulators(script: string, vars: Record<string, string> = {}) {
    dir = mkdtempSync(join(tmpdir(), 'bm-exec-'));
    const runWorker = (env: Record<string, string>) =>
      spawn(process.execPath, [WORKER], {
        env: { ...env, PATH: process.env.PATH, INSECURE: 'true', SCRIPT: script, STARTS_FILE: join(dir, 'starts'), STEP_DELAY_MS: '50', ...vars },
        stdio: 'ignore',
        detached: true,
      });
    k8s = await KubeApiEmulator.start({ runWorker });
    ec2 = await startEc2Emulator({ credentials: { 'some-key': 'some-secret' }, runWorker, bootDelayMs: 20 });
    return { k8s, ec2 };
  }

  it('runs a build on Kubernetes, deletes its Job afterwards, and counts nothing as fallen back', async () => {
    const { k8s, ec2 } = await emulators('full-run');
    fx = await startFixture(exampleConfig(k8s, ec2));
    const build = await fx.manager.service.submit(urlBuild('exec/k8s'));
    const done = await fx.waitFinal(build.id, 30_000);
    expect(done.phase).toBe('complete');
    expect(done.executor).toBe('openshift');
    expect(lines(join(dir, 'starts'))).toHaveLength(1);
    await fx.waitFor(build.id, () => k8s.jobs('builder').length === 0, 10_000);
    expect(ec2.calls('RunInstances')).toHaveLength(0);
  });

  it('falls back to EC2 when Kubernetes cannot be reached, in the same attempt, and says so in the history and metrics', async () => {
    const { k8s, ec2 } = await emulators('full-run');
    await k8s.refuseConnections();
    fx = await startFixture(exampleConfig(k8s, ec2));
    const build = await fx.manager.service.submit(urlBuild('exec/fallback'));
    const done = await fx.waitFinal(build.id, 30_000);
    expect(done.phase).toBe('complete');
    expect(done.executor).toBe('EC2Executor');
    expect(done.attempt).toBe(1);
    expect(lines(join(dir, 'starts'))).toHaveLength(1);
    const history = await fx.manager.service.history(build.id);
    const failed = history.find((h) => h.event.type === 'executor.failed');
    expect(failed?.event).toMatchObject({ executorName: 'openshift', failure: 'retryable' });
    expect(String(failed?.event.reason)).toMatch(/openshift/);
    const { body } = await fx.manager.service.metrics();
    expect(body).toMatch(/^quay_build_fallback_total\{executor="openshift"\} 1$/m);
    // The instance is terminated once the build is over.
    const [instance] = ec2.instances();
    await ec2.waitForState(instance.instanceId, 'terminated', 10_000);
  });

  it('with both control planes refusing, requeues with backoff and completes on a later attempt; no duplicate worker', async () => {
    const { k8s, ec2 } = await emulators('full-run');
    await k8s.refuseConnections();
    ec2.noCapacity();
    // A 2 s backoff leaves time to heal the control planes before the second attempt.
    fx = await startFixture(exampleConfig(k8s, ec2, { backoff: 2 }));
    const build = await fx.manager.service.submit(urlBuild('exec/requeue'));
    await fx.waitFor(build.id, (b) => b.attempt === 1 && b.state === 'queued', 15_000);
    expect((await fx.manager.service.get(build.id)).reason).toMatch(/InsufficientInstanceCapacity/);
    await k8s.acceptConnections();
    ec2.clearFaults();
    const done = await fx.waitFinal(build.id, 30_000);
    expect(done.phase).toBe('complete');
    expect(done.attempt).toBe(2);
    expect(lines(join(dir, 'starts'))).toHaveLength(1);
  });

  it('MINIMUM_RETRY_THRESHOLD keeps an executor out of a late attempt', async () => {
    const { k8s, ec2 } = await emulators('full-run');
    // One retry in all: the first claim leaves 0, below openshift's threshold of 1.
    fx = await startFixture(exampleConfig(k8s, ec2, { manager: 'BUILDMAN_BUILD_RETRIES: 1' }));
    const build = await fx.manager.service.submit(urlBuild('exec/threshold'));
    const done = await fx.waitFinal(build.id, 30_000);
    expect(done.phase).toBe('complete');
    expect(done.executor).toBe('EC2Executor');
    expect(k8s.requests.filter((r) => r.method === 'POST')).toHaveLength(0);
  });

  it('cancel deletes the Job and its worker within 5 seconds', async () => {
    const { k8s, ec2 } = await emulators('heartbeat-forever');
    fx = await startFixture(exampleConfig(k8s, ec2));
    const build = await fx.manager.service.submit(urlBuild('exec/cancel'));
    await fx.waitFor(build.id, (b) => b.phase === 'building', 20_000);
    expect(k8s.jobs('builder')).toHaveLength(1);
    const t0 = Date.now();
    await fx.manager.service.cancel(build.id);
    await fx.waitFor(build.id, () => k8s!.jobs('builder').length === 0 && k8s!.liveWorkers === 0, 5000);
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('an instance whose worker never registers is terminated when the build expires', async () => {
    const { k8s, ec2 } = await emulators('never-register');
    await k8s.refuseConnections();
    fx = await startFixture(exampleConfig(k8s, ec2, { manager: 'BUILDMAN_BUILD_RETRIES: 1', ec2SetupTime: 1 }));
    const build = await fx.manager.service.submit(urlBuild('exec/expire'));
    const done = await fx.waitFinal(build.id, 20_000);
    expect(done.phase).toBe('expired');
    const [instance] = ec2.instances();
    await ec2.waitForState(instance.instanceId, 'terminated', 10_000);
  });

  it('the orphan sweep removes a worker no build owns and leaves live ones alone', async () => {
    const { k8s, ec2 } = await emulators('heartbeat-forever');
    fx = await startFixture(exampleConfig(k8s, ec2));
    const live = await fx.manager.service.submit(urlBuild('exec/live'));
    await fx.waitFor(live.id, (b) => b.phase === 'building', 20_000);
    // Plant an orphan: a Job of this installation for a build the manager never heard of.
    const config = { ...(await import('../../src/config/load-config.js')).parseConfig(
      `FEATURE_BUILD_SUPPORT: true\nBUILD_MANAGER:\n- ephemeral\n- ${exampleConfig(k8s, ec2).split('\n').join('\n  ')}`,
      { env: {} },
    ).manager.EXECUTORS[0] } as KubernetesExecutorConfig;
    const planter = new KubernetesExecutor(config, {
      managerHostname: 'localhost',
      grpcAddress: fx.manager.grpcAddress,
      installationId: fx.manager.installationId,
      dataDir: fx.dataDir,
      log: { info() {}, warn() {}, error() {} },
    });
    const orphanId = '00000000-0000-4000-8000-000000000000';
    await planter.start({ buildId: orphanId, attempt: 1, token: 'not-a-real-token' });
    await planter.close();
    expect(k8s.jobs('builder')).toHaveLength(2);
    await fx.waitFor(live.id, () => k8s!.jobs('builder').length === 1, 15_000);
    expect(k8s.jobs('builder')[0].metadata.name).toBe(`${live.id}-1`);
    // The count is recorded when that executor's sweep finishes, just after the delete.
    let body = '';
    for (let i = 0; i < 50 && !/^buildman_orphans_removed_total\{executor="openshift"\} 1$/m.test(body); i++) {
      body = (await fx.manager.service.metrics()).body;
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(body).toMatch(/^buildman_orphans_removed_total\{executor="openshift"\} 1$/m);
    await fx.manager.service.cancel(live.id);
  });
});
