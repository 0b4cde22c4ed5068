import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { BuildmanError, CapacityError, InfraError, PermanentError } from '../../../src/errors/buildman-error.js';
import { KubernetesExecutor } from '../../../src/executors/kubernetes/kubernetes-executor.js';
import { KubeApiEmulator, type KubeApiEmulatorOptions } from '../../emulators/kubernetes/kube-api-emulator.js';
import { TestPki } from '../../emulators/kubernetes/test-pki.js';
import { BUILD_ID, emulatorKeys, eventually, kubeConfig, kubeContext, REG_TOKEN } from './kube-fixture.js';
import { nodeWorker } from './worker-process.js';

let emulator: KubeApiEmulator | undefined;
// One cluster CA for the file: key generation is the slow part of starting an emulator.
let pki: TestPki;
beforeAll(() => {
  pki = TestPki.create();
});
afterAll(() => pki.remove());
afterEach(async () => {
  await emulator?.close();
  emulator = undefined;
});

async function setup(keys: Record<string, unknown> = {}, opts: KubeApiEmulatorOptions = {}, installationId = 'bm-0123456789ab') {
  emulator = await KubeApiEmulator.start({ pki, ...opts });
  const ctx = kubeContext({ installationId });
  const executor = new KubernetesExecutor(kubeConfig({ NAME: 'k8s-test', ...emulatorKeys(emulator), ...keys }), ctx);
  return { emulator, executor, ctx };
}

const start = (ex: KubernetesExecutor, attempt = 1, buildId = BUILD_ID) => ex.start({ buildId, attempt, token: REG_TOKEN });

async function failureOf(p: Promise<unknown>): Promise<BuildmanError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BuildmanError);
  return err as BuildmanError;
}

describe('start', () => {
  it('creates one Job named <buildId>-<attempt> that the API server accepts, with its pod', async () => {
    const { emulator, executor } = await setup();
    const id = await start(executor);
    expect(id).toBe(`${BUILD_ID}-1`);
    const job = emulator.job('builder', id)!;
    expect(job.metadata.labels).toMatchObject({ build: BUILD_ID, 'buildman.io/installation': 'bm-0123456789ab', 'buildman.io/attempt': '1' });
    expect(job.metadata.uid).toMatch(/^[0-9a-f-]{36}$/);
    await eventually(() => emulator.pods('builder', `job-name=${id}`).length === 1);
    expect(emulator.pods('builder', `job-name=${id}`)[0].status.phase).toBe('Running');
  });

  it('both kinds create Jobs that pass the API server validation', async () => {
    const { emulator } = await setup();
    for (const keys of [{ EXECUTOR: 'kubernetes' }, { EXECUTOR: 'kubernetes', KUBERNETES_DISTRIBUTION: 'openshift', NODE_SELECTOR_LABEL_VALUE: 'big' }, { EXECUTOR: 'kubernetesPodman', KUBERNETES_DISTRIBUTION: 'openshift' }]) {
      const ex = new KubernetesExecutor(kubeConfig({ ...emulatorKeys(emulator), ...keys }), kubeContext());
      const id = await start(ex, 1, `${keys.EXECUTOR.toLowerCase()}-${keys.KUBERNETES_DISTRIBUTION ?? 'basic'}`);
      expect(emulator.job('builder', id)).toBeDefined();
    }
    expect(emulator.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([201, 201, 201]);
  });

  it('is idempotent: a repeated start meets AlreadyExists and returns the same id', async () => {
    const { emulator, executor, ctx } = await setup();
    const first = await start(executor);
    expect(await start(executor)).toBe(first);
    expect(emulator.jobs('builder')).toHaveLength(1);
    expect(emulator.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([201, 409]);
    expect(ctx.logged.some((l) => l.msg?.includes('already exists'))).toBe(true);
  });

  it('concurrent starts of one attempt make one Job', async () => {
    const { emulator, executor } = await setup();
    const ids = await Promise.all([start(executor), start(executor), start(executor)]);
    expect(new Set(ids).size).toBe(1);
    expect(emulator.jobs('builder')).toHaveLength(1);
  });

  it('a repeated start at a full quota still finds its own Job (quota is checked before the name)', async () => {
    const { emulator, executor } = await setup({}, { maxJobs: 1 });
    const id = await start(executor);
    expect(await start(executor)).toBe(id);
    expect(emulator.requests.filter((r) => r.method === 'POST').map((r) => r.status)).toEqual([201, 403]);
  });

  it('never logs the token', async () => {
    const { executor, ctx } = await setup({ EXECUTOR: 'kubernetes' });
    const id = await start(executor);
    await start(executor);
    await executor.stop({ buildId: BUILD_ID, attempt: 1, executionId: id });
    expect(JSON.stringify(ctx.logged)).not.toContain(REG_TOKEN);
  });
});

describe('stop', () => {
  it('deletes the Job and its pods, and the worker process is killed', async () => {
    const worker = nodeWorker();
    const { emulator, executor } = await setup({}, { runWorker: worker.runWorker });
    const id = await start(executor);
    await eventually(() => emulator.liveWorkers === 1);
    await executor.stop({ buildId: BUILD_ID, attempt: 1, executionId: id });
    expect(emulator.job('builder', id)).toBeUndefined();
    expect(emulator.pods('builder')).toEqual([]);
    await eventually(() => emulator.liveWorkers === 0);
    const deletes = emulator.requests.filter((r) => r.method === 'DELETE');
    expect(deletes.map((r) => [r.path, r.query])).toEqual([
      [`/apis/batch/v1/namespaces/builder/jobs/${id}`, { propagationPolicy: 'Background' }],
      ['/api/v1/namespaces/builder/pods', { labelSelector: `job-name=${id}` }],
    ]);
  });

  it('without an execution id finds the Job by build and attempt', async () => {
    const { emulator, executor } = await setup();
    const id = await start(executor, 4);
    await executor.stop({ buildId: BUILD_ID, attempt: 4 });
    expect(emulator.job('builder', id)).toBeUndefined();
  });

  it('a Job that is already gone (404) is a success', async () => {
    const { emulator, executor } = await setup();
    await expect(executor.stop({ buildId: BUILD_ID, attempt: 9 })).resolves.toBeUndefined();
    expect(emulator.requests.find((r) => r.method === 'DELETE')!.status).toBe(404);
  });

  it('under DEBUG keeps the Job and its running worker, and the Job has no TTL', async () => {
    const worker = nodeWorker();
    const { emulator, executor, ctx } = await setup({ DEBUG: true }, { runWorker: worker.runWorker });
    const id = await start(executor);
    await eventually(() => emulator.liveWorkers === 1);
    await executor.stop({ buildId: BUILD_ID, attempt: 1, executionId: id });
    expect(emulator.requests.some((r) => r.method === 'DELETE')).toBe(false);
    expect(emulator.job('builder', id)!.spec.ttlSecondsAfterFinished).toBeUndefined();
    expect(emulator.pods('builder', `job-name=${id}`)).toHaveLength(1);
    expect(emulator.liveWorkers).toBe(1);
    expect(ctx.logged.some((l) => l.msg?.includes('DEBUG'))).toBe(true);
  });
});

describe('runningCount and listWorkers', () => {
  it('count only this installation\'s unfinished Jobs; list every Job of ours', async () => {
    const { emulator, executor } = await setup();
    const other = new KubernetesExecutor(kubeConfig(emulatorKeys(emulator)), kubeContext({ installationId: 'bm-someoneelse' }));
    const a = await start(executor, 1, 'build-a');
    const b = await start(executor, 1, 'build-b');
    const c = await start(executor, 1, 'build-c');
    await start(other, 1, 'foreign-1');
    await start(other, 1, 'foreign-2');
    await eventually(() => emulator.pods('builder').length === 5);
    expect(await executor.runningCount()).toBe(3);
    expect(await other.runningCount()).toBe(2);

    expect(emulator.finishJob('builder', a, true)).toBe(true);
    expect(emulator.finishJob('builder', b, false)).toBe(true);
    // backoffLimit 1: the failed pod is replaced once before the Job fails.
    await eventually(() => emulator.pods('builder', `job-name=${b}`).some((p) => p.status.phase === 'Running'));
    expect(emulator.finishJob('builder', b, false)).toBe(true);
    expect(emulator.job('builder', b)!.status.conditions!.map((x) => x.type)).toEqual(['FailureTarget', 'Failed']);
    expect(emulator.job('builder', a)!.status.conditions!.map((x) => x.type)).toEqual(['SuccessCriteriaMet', 'Complete']);

    expect(await executor.runningCount()).toBe(1);
    const workers = await executor.listWorkers();
    expect(workers.map((w) => [w.buildId, w.attempt, w.executionId, w.running]).sort()).toEqual([
      ['build-a', 1, a, false],
      ['build-b', 1, b, false],
      ['build-c', 1, c, true],
    ]);
    for (const w of workers) expect(Math.abs(w.createdAt - Date.now())).toBeLessThan(60_000);
    expect(emulator.requests.filter((r) => r.method === 'GET').every((r) => r.query.labelSelector === 'buildman.io/installation=bm-0123456789ab' || r.user)).toBe(true);
  });

  it('a finished Job leaves after RETENTION_AFTER_FINISHED', async () => {
    const worker = nodeWorker({ runMs: 50, exitCode: 0 });
    const { emulator, executor } = await setup({ RETENTION_AFTER_FINISHED: 1 }, { runWorker: worker.runWorker });
    const id = await start(executor);
    await eventually(async () => (await executor.listWorkers()).find((w) => w.executionId === id)?.running === false);
    expect(await executor.runningCount()).toBe(0);
    await eventually(() => emulator.job('builder', id) === undefined, 5000);
    expect(await executor.listWorkers()).toEqual([]);
  });
});

describe('real worker processes', () => {
  it('kubernetesPodman: the worker runs with the container environment and its exit completes the Job', async () => {
    const worker = nodeWorker({ runMs: 100, exitCode: 0 });
    const { emulator, executor } = await setup({ EXECUTOR: 'kubernetesPodman' }, { runWorker: worker.runWorker });
    const id = await start(executor);
    await eventually(() => JobDone(emulator, id));
    expect(worker.runs).toHaveLength(1);
    expect(worker.runs[0].env).toMatchObject({ TOKEN: REG_TOKEN, BUILD_UUID: BUILD_ID, SERVER: 'buildman.example.com:55443', CONTAINER_RUNTIME: 'podman', EXECUTOR: 'kubernetesPodman' });
    expect(emulator.job('builder', id)!.status).toMatchObject({ succeeded: 1, active: 0 });
    expect(await executor.runningCount()).toBe(0);
  });

  it('kubernetes: the worker gets the environment the VM would run it with (read back from USERDATA)', async () => {
    const worker = nodeWorker({ runMs: 50, exitCode: 0 });
    const { emulator, executor } = await setup({ EXECUTOR: 'kubernetes', HTTPS_PROXY: 'http://proxy:3128' }, { runWorker: worker.runWorker });
    const id = await start(executor);
    await eventually(() => JobDone(emulator, id));
    expect(worker.runs[0].env).toMatchObject({ TOKEN: REG_TOKEN, SERVER: 'buildman.example.com:55443', BUILD_UUID: BUILD_ID, REGISTRY_HOSTNAME: 'quay.example.com', HTTPS_PROXY: 'http://proxy:3128' });
    expect(worker.runs[0].env).not.toHaveProperty('USERDATA');
  });

  it('a failing worker is retried once (backoffLimit 1), then the Job fails', async () => {
    const worker = nodeWorker({ runMs: 20, exitCode: 3 });
    const { emulator, executor } = await setup({}, { runWorker: worker.runWorker, podRetryDelayMs: 10 });
    const id = await start(executor);
    await eventually(() => JobDone(emulator, id));
    expect(worker.runs).toHaveLength(2);
    expect(emulator.job('builder', id)!.status).toMatchObject({ failed: 2 });
    expect(emulator.job('builder', id)!.status.conditions!.at(-1)).toMatchObject({ type: 'Failed', reason: 'BackoffLimitExceeded' });
    expect((await executor.listWorkers())[0].running).toBe(false);
  });
});

function JobDone(emulator: KubeApiEmulator, id: string): boolean {
  return (emulator.job('builder', id)?.status.conditions ?? []).some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
}

describe('control-plane failures map to error kinds that name the executor and the fix', () => {
  it('connection refused: retryable, EXECUTOR_UNREACHABLE; and it recovers on the same port', async () => {
    const { emulator, executor } = await setup();
    await emulator.refuseConnections();
    const err = await failureOf(start(executor));
    expect(err).toBeInstanceOf(InfraError);
    expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_UNREACHABLE' });
    expect(err.message).toMatch(/^executor k8s-test \(kubernetesPodman at https:\/\/127\.0\.0\.1:\d+\): create Job .* in namespace builder failed \(ECONNREFUSED\)/);
    expect(err.message).toContain("Check that the control plane's address");
    expect((await failureOf(executor.runningCount())).code).toBe('EXECUTOR_UNREACHABLE');
    expect((await failureOf(executor.listWorkers())).code).toBe('EXECUTOR_UNREACHABLE');
    expect((await failureOf(executor.stop({ buildId: BUILD_ID, attempt: 1 }))).code).toBe('EXECUTOR_UNREACHABLE');
    await emulator.acceptConnections();
    expect(await start(executor)).toBe(`${BUILD_ID}-1`);
  });

  it('no answer within K8S_API_TIMEOUT: retryable, naming the setting', async () => {
    const { emulator, executor } = await setup({ K8S_API_TIMEOUT: 1 });
    emulator.delayResponses(4000);
    const began = Date.now();
    const err = await failureOf(executor.runningCount());
    expect(Date.now() - began).toBeLessThan(3000);
    expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_UNREACHABLE' });
    expect(err.message).toContain('no answer within K8S_API_TIMEOUT=1s');
    expect(err.message).toContain('did not answer in time');
  });

  it('500 and 503: retryable, EXECUTOR_UNAVAILABLE', async () => {
    const { emulator, executor } = await setup();
    emulator.failRequests(500, { times: 1 });
    const err = await failureOf(start(executor));
    expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_UNAVAILABLE' });
    expect(err.message).toContain('HTTP 500');
    expect(err.message).toContain('InternalError');
    emulator.failRequests(503, { times: 1 });
    expect(await failureOf(executor.runningCount())).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_UNAVAILABLE' });
    // The faults were one-shot: the next calls work.
    expect(await start(executor)).toBe(`${BUILD_ID}-1`);
  });

  it('429 throttling: retryable, EXECUTOR_THROTTLED', async () => {
    const { emulator, executor } = await setup();
    emulator.throttle(2);
    const err = await failureOf(start(executor));
    expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_THROTTLED' });
    expect(err.message).toContain('HTTP 429');
    await emulator.clearFaults();
    expect(await executor.runningCount()).toBe(0);
  });

  it('a full ResourceQuota: CapacityError (fall back or wait), not an auth failure', async () => {
    const { emulator, executor } = await setup({}, { maxJobs: 1 });
    await start(executor, 1, 'first-build');
    const err = await failureOf(start(executor, 1, 'second-build'));
    expect(err).toBeInstanceOf(CapacityError);
    expect(err).toMatchObject({ kind: 'capacity', code: 'EXECUTOR_CAPACITY' });
    expect(err.message).toContain('exceeded quota');
    emulator.setMaxJobs(undefined);
    expect(await start(executor, 1, 'second-build')).toBe('second-build-1');
  });

  it('a Job the API server finds invalid (422): PermanentError naming the field', async () => {
    const { executor } = await setup({ CONTAINER_MEMORY_REQUEST: 'lots' });
    const err = await failureOf(start(executor));
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({ kind: 'permanent', code: 'EXECUTOR_REJECTED' });
    expect(err.message).toContain('HTTP 422');
    expect(err.message).toContain('spec.template.spec.containers[0].resources.requests.memory');
    expect(err.message).toContain('check the executor config');
  });
});
