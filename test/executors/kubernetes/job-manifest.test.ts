import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Container, V1Job } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { KubernetesExecutorConfig } from '../../../src/config/config-types.js';
import { loadConfig } from '../../../src/config/load-config.js';
import { PermanentError } from '../../../src/errors/buildman-error.js';
import { workerEnvFromIgnition, workerIgnition } from '../../../src/executors/ignition/worker-ignition.js';
import { hourLabel, jobName, labelValue, workerFromJob } from '../../../src/executors/kubernetes/job-labels.js';
import { workerJob, type WorkerJobOptions } from '../../../src/executors/kubernetes/job-manifest.js';
import { PACKAGE_ROOT } from '../../../src/util/package-root.js';
import { validateJob } from '../../emulators/kubernetes/job-validation.js';
import type { Job } from '../../emulators/kubernetes/kube-objects.js';
import { BUILD_ID, kubeConfig, REG_TOKEN } from './kube-fixture.js';

const NOW = new Date(2026, 0, 2, 3, 4, 5);

function manifest(config: KubernetesExecutorConfig, over: Partial<WorkerJobOptions> = {}): V1Job {
  return workerJob({
    config,
    buildId: BUILD_ID,
    attempt: 2,
    token: REG_TOKEN,
    installationId: 'bm-0123456789ab',
    grpcAddress: 'buildman.example.com:55443',
    registryHostname: 'quay.example.com',
    now: NOW,
    ...over,
  });
}

const container = (job: V1Job): V1Container => job.spec!.template.spec!.containers[0];
const envOf = (job: V1Job): Record<string, string> => Object.fromEntries((container(job).env ?? []).map((e) => [e.name, e.value ?? '']));
/** The Job as JSON on the wire, checked the way the emulator's API server checks it. */
const wireProblems = (job: V1Job) => validateJob(JSON.parse(JSON.stringify(job)) as Job);

describe('the Job skeleton (reference §5.3)', () => {
  const job = manifest(kubeConfig({ EXECUTOR: 'kubernetes' }));

  it('is a batch/v1 Job named <buildId>-<attempt> in BUILDER_NAMESPACE', () => {
    expect(job.apiVersion).toBe('batch/v1');
    expect(job.kind).toBe('Job');
    expect(job.metadata).toMatchObject({ name: `${BUILD_ID}-2`, namespace: 'builder', annotations: { 'buildman.io/build-id': BUILD_ID } });
    expect(job.metadata).not.toHaveProperty('generateName');
  });

  it("carries Quay's labels and ours on the Job and on the pod template", () => {
    const labels = {
      build: BUILD_ID,
      time: '2026-01-02-03',
      manager: labelValue(hostname()),
      'quay-sha': 'none',
      'buildman.io/installation': 'bm-0123456789ab',
      'buildman.io/attempt': '2',
    };
    expect(job.metadata!.labels).toEqual(labels);
    expect(job.spec!.template.metadata!.labels).toEqual(labels);
  });

  it('has the deadline, one retry, the retention, Never restart and the pull secret', () => {
    expect(job.spec).toMatchObject({ activeDeadlineSeconds: 7200, backoffLimit: 1, ttlSecondsAfterFinished: 120 });
    expect(job.spec!.template.spec).toMatchObject({ restartPolicy: 'Never', dnsPolicy: 'Default', imagePullSecrets: [{ name: 'builder' }] });
    expect(job.spec!.template.spec!.containers).toHaveLength(1);
  });

  it('passes the API server schema and name rules', () => {
    expect(wireProblems(job)).toEqual([]);
  });
});

describe('kubernetes (the QEMU VM pod)', () => {
  it('runs the VM image privileged with USERDATA ignition, VM_MEMORY and VM_VOLUME_SIZE, defaults', () => {
    const job = manifest(kubeConfig({ EXECUTOR: 'kubernetes', WORKER_TAG: 'v3.9' }));
    const c = container(job);
    expect(c).toMatchObject({
      name: 'builder',
      image: 'quay.io/quay/quay-builder-qemu-fedoracoreos:stable',
      imagePullPolicy: 'Always',
      securityContext: { privileged: true },
      resources: { requests: { memory: '3968Mi' } },
    });
    expect(c.resources).not.toHaveProperty('limits');
    expect((c.env ?? []).map((e) => e.name)).toEqual(['USERDATA', 'VM_MEMORY', 'VM_VOLUME_SIZE']);
    const env = envOf(job);
    expect(env.VM_MEMORY).toBe('4G');
    expect(env.VM_VOLUME_SIZE).toBe('32G');
    // The ignition is the shared worker ignition, with the manager's gRPC address as SERVER.
    const ignition = JSON.parse(env.USERDATA);
    expect(ignition.ignition.version).toBe('3.0.0');
    expect(workerEnvFromIgnition(ignition)).toMatchObject({ TOKEN: REG_TOKEN, SERVER: 'buildman.example.com:55443', BUILD_UUID: BUILD_ID, REGISTRY_HOSTNAME: 'quay.example.com' });
    const expected = workerIgnition({ buildId: BUILD_ID, token: REG_TOKEN, server: 'buildman.example.com:55443', registryHostname: 'quay.example.com', config: kubeConfig({ EXECUTOR: 'kubernetes', WORKER_TAG: 'v3.9' }) });
    expect(ignition).toEqual(expected);
  });

  it('basic distribution masks the service-account token with an in-memory emptyDir', () => {
    const job = manifest(kubeConfig({ EXECUTOR: 'kubernetes' }));
    const pod = job.spec!.template.spec!;
    expect(pod.volumes).toEqual([{ name: 'secrets-mask', emptyDir: { medium: 'Memory' } }]);
    expect(container(job).volumeMounts).toEqual([{ name: 'secrets-mask', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }]);
    for (const key of ['automountServiceAccountToken', 'serviceAccount', 'serviceAccountName', 'enableServiceLinks', 'nodeSelector']) expect(pod).not.toHaveProperty(key);
  });

  it('every configured key reaches the manifest (basic)', () => {
    const config = kubeConfig({
      EXECUTOR: 'kubernetes',
      BUILDER_NAMESPACE: 'quay-builds',
      BUILDER_VM_CONTAINER_IMAGE: 'registry.example.com/qemu-builder:v2',
      CONTAINER_MEMORY_REQUEST: '2Gi',
      VM_MEMORY_LIMIT: '6G',
      VOLUME_SIZE: '64G',
      IMAGE_PULL_POLICY: 'IfNotPresent',
      IMAGE_PULL_SECRET_NAME: 'pull-me',
      DNS_POLICY: 'ClusterFirst',
      MAXIMUM_JOB_TIME: 3600,
      RETENTION_AFTER_FINISHED: 30,
    });
    const job = manifest(config);
    expect(job.metadata!.namespace).toBe('quay-builds');
    expect(job.spec).toMatchObject({ activeDeadlineSeconds: 3600, ttlSecondsAfterFinished: 30 });
    expect(job.spec!.template.spec).toMatchObject({ dnsPolicy: 'ClusterFirst', imagePullSecrets: [{ name: 'pull-me' }] });
    expect(container(job)).toMatchObject({ image: 'registry.example.com/qemu-builder:v2', imagePullPolicy: 'IfNotPresent', resources: { requests: { memory: '2Gi' } } });
    expect(envOf(job)).toMatchObject({ VM_MEMORY: '6G', VM_VOLUME_SIZE: '64G' });
    expect(wireProblems(job)).toEqual([]);
  });

  it('DEBUG keeps finished Jobs: no ttlSecondsAfterFinished', () => {
    const job = manifest(kubeConfig({ EXECUTOR: 'kubernetes', DEBUG: true }));
    expect(job.spec).not.toHaveProperty('ttlSecondsAfterFinished');
    expect(job.spec).toMatchObject({ activeDeadlineSeconds: 7200, backoffLimit: 1 });
  });
});

describe('openshift distribution', () => {
  const config = kubeConfig({
    EXECUTOR: 'kubernetes',
    KUBERNETES_DISTRIBUTION: 'openshift',
    CONTAINER_MEMORY_REQUEST: '1Gi',
    CONTAINER_MEMORY_LIMITS: '3Gi',
    CONTAINER_CPU_REQUEST: '250m',
    CONTAINER_CPU_LIMITS: '2',
    SERVICE_ACCOUNT_NAME: 'builder-sa',
    NODE_SELECTOR_LABEL_KEY: 'node-role.kubernetes.io/builder',
    NODE_SELECTOR_LABEL_VALUE: 'true',
  });

  it('requests and limits cpu and memory, and sets the service account, no token, no service links, the node selector', () => {
    const job = manifest(config);
    const pod = job.spec!.template.spec!;
    expect(container(job).resources).toEqual({ requests: { memory: '1Gi', cpu: '250m' }, limits: { memory: '3Gi', cpu: '2' } });
    expect(pod).toMatchObject({
      automountServiceAccountToken: false,
      serviceAccount: 'builder-sa',
      serviceAccountName: 'builder-sa',
      enableServiceLinks: false,
      nodeSelector: { 'node-role.kubernetes.io/builder': 'true' },
    });
    expect(pod).not.toHaveProperty('volumes');
    expect(container(job)).not.toHaveProperty('volumeMounts');
    expect(wireProblems(job)).toEqual([]);
  });

  it('a blank NODE_SELECTOR_LABEL_VALUE sets no node selector', () => {
    const job = manifest(kubeConfig({ EXECUTOR: 'kubernetes', KUBERNETES_DISTRIBUTION: 'openshift', NODE_SELECTOR_LABEL_VALUE: '  ' }));
    expect(job.spec!.template.spec).not.toHaveProperty('nodeSelector');
    expect(container(job).resources).toEqual({ requests: { memory: '3968Mi', cpu: '500m' }, limits: { memory: '5120Mi', cpu: '1000m' } });
  });
});

describe('kubernetesPodman', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'buildman-k8s-ca-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("runs BUILDER_CONTAINER_IMAGE unprivileged with Quay's worker environment, in Quay's order", () => {
    const job = manifest(kubeConfig({ EXECUTOR: 'kubernetesPodman' }));
    expect(container(job)).toMatchObject({ name: 'builder', image: 'quay.io/projectquay/quay-builder:latest', imagePullPolicy: 'Always', securityContext: { privileged: false } });
    expect(container(job).env).toEqual([
      { name: 'TOKEN', value: REG_TOKEN },
      { name: 'BUILD_UUID', value: BUILD_ID },
      { name: 'SERVER', value: 'buildman.example.com:55443' },
      { name: 'REGISTRY_HOSTNAME', value: 'quay.example.com' },
      { name: 'CONTAINER_RUNTIME', value: 'podman' },
      { name: 'BULDAH_ISOLATION', value: 'chroot' },
      { name: 'BUILDAH_ISOLATION', value: 'chroot' },
      { name: 'CA_CERT', value: '' },
      { name: 'GIT_SSL_CAINFO', value: '/certs/cacert.crt' },
      { name: 'TLS_CERT_PATH', value: '/certs/cacert.crt' },
      { name: 'SSL_CERT_FILE', value: '/certs/cacert.crt' },
      { name: 'DEBUG', value: 'false' },
      { name: 'HTTP_PROXY', value: '' },
      { name: 'HTTPS_PROXY', value: '' },
      { name: 'NO_PROXY', value: '' },
      { name: 'DOCKER_HOST', value: 'unix:///tmp/podman-run-1000/podman/podman.sock' },
      { name: 'EXECUTOR', value: 'kubernetesPodman' },
    ]);
    expect(job.spec!.template.spec!.volumes).toEqual([{ name: 'secrets-mask', emptyDir: { medium: 'Memory' } }]);
    expect(wireProblems(job)).toEqual([]);
  });

  it('every configured key reaches the manifest: image, proxies, DEBUG, CA_CERT with EXTRA_CA_CERTS', () => {
    const extra = join(dir, 'extra.crt');
    writeFileSync(extra, '-----BEGIN CERTIFICATE-----\nEXTRA\n-----END CERTIFICATE-----\n');
    const job = manifest(
      kubeConfig({
        EXECUTOR: 'kubernetesPodman',
        BUILDER_CONTAINER_IMAGE: 'registry.example.com/quay-builder:v3',
        HTTP_PROXY: 'http://proxy:3128',
        HTTPS_PROXY: 'http://proxy:3129',
        NO_PROXY: '.cluster.local',
        DEBUG: true,
        CA_CERT: '-----BEGIN CERTIFICATE-----\nMAIN\n-----END CERTIFICATE-----',
        EXTRA_CA_CERTS: [extra],
        KUBERNETES_DISTRIBUTION: 'openshift',
      }),
      { registryHostname: undefined },
    );
    expect(container(job).image).toBe('registry.example.com/quay-builder:v3');
    expect(envOf(job)).toMatchObject({
      HTTP_PROXY: 'http://proxy:3128',
      HTTPS_PROXY: 'http://proxy:3129',
      NO_PROXY: '.cluster.local',
      DEBUG: 'true',
      REGISTRY_HOSTNAME: '',
      CA_CERT: '-----BEGIN CERTIFICATE-----\nMAIN\n-----END CERTIFICATE-----\n-----BEGIN CERTIFICATE-----\nEXTRA\n-----END CERTIFICATE-----\n',
    });
    expect(job.spec).not.toHaveProperty('ttlSecondsAfterFinished');
    expect(wireProblems(job)).toEqual([]);
  });

  it('an unreadable EXTRA_CA_CERTS file is a config error naming the key and the path', () => {
    const missing = join(dir, 'missing.crt');
    const make = () => manifest(kubeConfig({ EXECUTOR: 'kubernetesPodman', NAME: 'k8s-podman', EXTRA_CA_CERTS: [missing] }));
    expect(make).toThrow(PermanentError);
    expect(make).toThrow(/executor k8s-podman: cannot read EXTRA_CA_CERTS file .*missing\.crt \(ENOENT\)/);
  });
});

describe('the seed example config (examples/config.example.yaml)', () => {
  it('its kubernetes executor becomes a valid openshift Job with every value it sets', async () => {
    const cfg = await loadConfig({ file: join(PACKAGE_ROOT, 'examples', 'config.example.yaml'), env: {} });
    const config = cfg.manager.EXECUTORS.find((e) => e.EXECUTOR === 'kubernetes') as KubernetesExecutorConfig;
    const job = manifest(config);
    const pod = job.spec!.template.spec!;
    expect(job.metadata!.namespace).toBe('builder');
    expect(container(job)).toMatchObject({
      image: 'quay.io/quay/quay-builder-qemu-fedoracoreos:stable',
      securityContext: { privileged: true },
      resources: { requests: { memory: '3968Mi', cpu: '500m' }, limits: { memory: '5120Mi', cpu: '1000m' } },
    });
    expect(pod).toMatchObject({ serviceAccount: 'some-sa', nodeSelector: { 'beta.kubernetes.io/instance-type': 'n1-standard-4' }, automountServiceAccountToken: false, enableServiceLinks: false });
    const env = envOf(job);
    expect(env.VM_VOLUME_SIZE).toBe('8G');
    // The worker image, tag and pull login from the example reach the VM's units.
    const units = JSON.parse(env.USERDATA).systemd.units as Array<{ name: string; contents?: string }>;
    const builder = units.find((u) => u.name === 'quay-builder.service')!.contents!;
    expect(builder).toContain('quay.io/quay/quay-builder:master');
    expect(builder).toContain('--username quayusertopullworker');
    expect(wireProblems(job)).toEqual([]);
  });
});

describe('names and labels', () => {
  it('jobName is <buildId>-<attempt> when that is a DNS-1123 label, else a stable hash', () => {
    expect(jobName(BUILD_ID, 3)).toBe(`${BUILD_ID}-3`);
    expect(jobName('Build_With.Odd/Chars', 1)).toMatch(/^bm-[0-9a-f]{40}-1$/);
    expect(jobName('x'.repeat(80), 12)).toBe(jobName('x'.repeat(80), 12));
    expect(jobName('x'.repeat(80), 12).length).toBeLessThanOrEqual(63);
  });

  it('labelValue makes host names and shas valid label values', () => {
    expect(labelValue('buildman.example.com:8443')).toBe('buildman.example.com-8443');
    expect(labelValue('-weird name-')).toBe('weird-name');
    expect(labelValue('a'.repeat(70))).toHaveLength(63);
  });

  it('hourLabel is local %Y-%m-%d-%H', () => {
    expect(hourLabel(new Date(2026, 10, 9, 8, 59))).toBe('2026-11-09-08');
  });

  it('workerFromJob reads the build id from the annotation, the attempt from the label, and finished from the conditions', () => {
    const job = manifest(kubeConfig());
    job.metadata!.creationTimestamp = new Date('2026-01-02T03:04:05Z');
    expect(workerFromJob(job)).toEqual({ buildId: BUILD_ID, attempt: 2, executionId: `${BUILD_ID}-2`, createdAt: Date.parse('2026-01-02T03:04:05Z'), running: true });
    job.status = { conditions: [{ type: 'SuccessCriteriaMet', status: 'True' }, { type: 'Complete', status: 'True' }] };
    expect(workerFromJob(job)!.running).toBe(false);
    job.status = { conditions: [{ type: 'Failed', status: 'False' }] };
    expect(workerFromJob(job)!.running).toBe(true);
    expect(workerFromJob({ metadata: { name: 'someone-elses', labels: {} } })).toBeUndefined();
  });
});
