import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Ec2ExecutorConfig, KubernetesExecutorConfig, PopenExecutorConfig } from '../../src/config/config-types.js';
import { describeConfig } from '../../src/config/describe-config.js';
import { loadConfig, parseConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors/buildman-error.js';
import { DEFAULT_WORKER_BINARY, PACKAGE_ROOT } from '../../src/util/package-root.js';

const example = join(PACKAGE_ROOT, 'examples', 'config.example.yaml');

/** A file with `manager` as BUILD_MANAGER[1] (indented by the caller's YAML). */
function withManager(manager: string, top = ''): string {
  const body = manager
    .trim()
    .split('\n')
    .map((line, i) => (i === 0 ? `- ${line}` : `  ${line}`))
    .join('\n');
  return `${top}\nBUILD_MANAGER:\n- ephemeral\n${body}\n`;
}

describe('the example config', () => {
  it('loads with its values, in order, and every default filled', async () => {
    const cfg = await loadConfig({ file: example, env: {} });
    expect(cfg.FEATURE_BUILD_SUPPORT).toBe(true);
    expect(cfg.manager.ALLOWED_WORKER_COUNT).toBe(10);
    expect(cfg.manager.ORCHESTRATOR_PREFIX).toBe('buildman/production/');
    expect(cfg.manager.ORCHESTRATOR).toEqual({
      kind: 'redis',
      REDIS_HOST: 'quay-redis-host',
      REDIS_PORT: 6379,
      REDIS_PASSWORD: 'quay-redis-password',
      REDIS_DB: 0,
      REDIS_SSL: true,
      REDIS_SKIP_KEYSPACE_EVENT_SETUP: false,
    });
    expect(cfg.manager.JOB_REGISTRATION_TIMEOUT).toBe(30);
    expect(cfg.manager.MACHINE_MAX_TIME).toBe(7200);
    expect(cfg.manager.retryBackoffSeconds).toBe(30);
    expect(cfg.manager.buildRetries).toBe(3);

    expect(cfg.manager.EXECUTORS.map((e) => [e.EXECUTOR, e.NAME])).toEqual([
      ['kubernetes', 'openshift'],
      ['ec2', 'EC2Executor'],
    ]);
    const k8s = cfg.manager.EXECUTORS[0] as KubernetesExecutorConfig;
    expect(k8s).toMatchObject({
      SETUP_TIME: 180,
      MINIMUM_RETRY_THRESHOLD: 1,
      VERIFY_TLS: false,
      KUBERNETES_DISTRIBUTION: 'openshift',
      VOLUME_SIZE: '8G',
      SERVICE_ACCOUNT_TOKEN: 'some-token',
      WORKER_TAG: 'master',
      // Defaults the file does not give.
      BUILDER_NAMESPACE: 'builder',
      K8S_API_TIMEOUT: 20,
      VM_MEMORY_LIMIT: '4G',
      IMAGE_PULL_POLICY: 'Always',
      DNS_POLICY: 'Default',
      MAXIMUM_JOB_TIME: 7200,
      RETENTION_AFTER_FINISHED: 120,
      MAX_LIFETIME_S: 10800,
      CONTAINER_RUNTIME: 'docker',
      DEBUG: false,
    });
    const ec2 = cfg.manager.EXECUTORS[1] as Ec2ExecutorConfig;
    expect(ec2).toMatchObject({
      EC2_REGION: 'us-east-1',
      EC2_INSTANCE_TYPE: 't2.large',
      EC2_SECURITY_GROUP_IDS: ['sg-somesg'],
      EC2_KEY_NAME: 'Some key',
      BLOCK_DEVICE_SIZE: 58,
      COREOS_CHANNEL: 'stable',
      SSH_AUTHORIZED_KEYS: [],
    });
    expect(cfg.unknownKeys).toEqual([]);
  });

  it('fills the server section and the manager hostname', async () => {
    const cfg = await loadConfig({ file: example, env: {}, cwd: '/srv/buildman' });
    expect(cfg.server).toEqual({
      grpcHost: '0.0.0.0',
      grpcPort: 50051,
      httpHost: '127.0.0.1',
      httpPort: 8686,
      dataDir: '/srv/buildman/.buildman',
      publicUrl: 'http://127.0.0.1:8686',
      maxContextBytes: 100 * 1024 * 1024,
    });
    expect(cfg.BUILDMAN_HOSTNAME).toBe('localhost');
    expect(cfg.SERVER_HOSTNAME).toBeUndefined();
    expect(cfg.PREFERRED_URL_SCHEME).toBe('http');
    expect(cfg.INSTANCE_SERVICE_KEY_SERVICE).toBe('quay');
  });

  it('and the local-registry example loads too', async () => {
    const cfg = await loadConfig({ file: join(PACKAGE_ROOT, 'examples', 'config.local-registry.yaml'), env: {} });
    expect(cfg.SERVER_HOSTNAME).toBe('127.0.0.1:5000');
    expect(cfg.manager.ORCHESTRATOR.kind).toBe('memory');
    expect(cfg.manager.EXECUTORS).toHaveLength(1);
    expect(cfg.manager.EXECUTORS[0]).toMatchObject({ EXECUTOR: 'popen', INSECURE: true, CONTAINER_RUNTIME: 'buildah' });
    expect(cfg.unknownKeys).toEqual([]);
  });
});

describe('the embedded default', () => {
  it('is one local popen executor on the in-memory orchestrator, with no registry', async () => {
    const cfg = await loadConfig({ env: {}, cwd: '/tmp/bm' });
    expect(cfg.SERVER_HOSTNAME).toBeUndefined();
    expect(cfg.FEATURE_BUILD_SUPPORT).toBe(true);
    expect(cfg.manager.ORCHESTRATOR).toEqual({ kind: 'memory' });
    expect(cfg.manager.ALLOWED_WORKER_COUNT).toBe(1);
    expect(cfg.manager.EXECUTORS).toEqual([
      {
        EXECUTOR: 'popen',
        NAME: 'local',
        INSECURE: true,
        CONTAINER_RUNTIME: 'buildah',
        SETUP_TIME: 500,
        BUILDER_BINARY_LOCATION: DEFAULT_WORKER_BINARY,
        BUILDAH_ISOLATION: 'chroot',
        MINIMUM_RETRY_THRESHOLD: 0,
        DEBUG: false,
      } satisfies PopenExecutorConfig,
    ]);
    expect(cfg.server.dataDir).toBe('/tmp/bm/.buildman');
    expect(cfg.unknownKeys).toEqual([]);
    expect(cfg.secrets).toEqual([]);
  });
});

describe('reading Quay configs', () => {
  it('accepts the legacy EXECUTOR + EXECUTOR_CONFIG form', () => {
    const cfg = parseConfig(
      withManager(`
ORCHESTRATOR:
  MEM_CONFIG: null
EXECUTOR: ec2
EXECUTOR_CONFIG:
  EC2_REGION: eu-west-1
  EC2_INSTANCE_TYPE: m5.large
  WORKER_TAG: v3.9`),
      { env: {} },
    );
    expect(cfg.manager.ORCHESTRATOR).toEqual({ kind: 'memory' });
    expect(cfg.manager.EXECUTORS).toHaveLength(1);
    expect(cfg.manager.EXECUTORS[0]).toMatchObject({ EXECUTOR: 'ec2', NAME: 'EC2Executor', EC2_REGION: 'eu-west-1', BLOCK_DEVICE_SIZE: 48 });
  });

  it('reads True/False, yes/no and on/off as booleans, as PyYAML does, but not y/n', () => {
    const cfg = parseConfig(
      withManager(
        `
ORCHESTRATOR:
  REDIS_HOST: redis.internal
  REDIS_SSL: True
  REDIS_SKIP_KEYSPACE_EVENT_SETUP: yes
EXECUTORS:
- EXECUTOR: kubernetesPodman
  VERIFY_TLS: False
  DEBUG: on
  NODE_SELECTOR_LABEL_VALUE: n`,
        'FEATURE_BUILD_SUPPORT: FALSE',
      ),
      { env: {} },
    );
    expect(cfg.FEATURE_BUILD_SUPPORT).toBe(false);
    expect(cfg.manager.ORCHESTRATOR).toMatchObject({ REDIS_SSL: true, REDIS_SKIP_KEYSPACE_EVENT_SETUP: true });
    expect(cfg.manager.EXECUTORS[0]).toMatchObject({ VERIFY_TLS: false, DEBUG: true, NODE_SELECTOR_LABEL_VALUE: 'n' });
  });

  it('takes quoted digits only where Quay does (Redis port and db), and bare numbers as CPU quantities', () => {
    const cfg = parseConfig(
      withManager(`
ORCHESTRATOR:
  REDIS_HOST: redis.internal
  REDIS_PORT: "6380"
  REDIS_DB: "2"
EXECUTORS:
- EXECUTOR: kubernetesPodman
  CONTAINER_CPU_LIMITS: 2`),
      { env: {} },
    );
    expect(cfg.manager.ORCHESTRATOR).toMatchObject({ REDIS_PORT: 6380, REDIS_DB: 2 });
    expect(cfg.manager.EXECUTORS[0]).toMatchObject({ CONTAINER_CPU_LIMITS: '2', CONTAINER_RUNTIME: 'podman' });
    expect(() => parseConfig(withManager('ALLOWED_WORKER_COUNT: "3"\nEXECUTORS: [{EXECUTOR: popen}]'), { env: {} })).toThrow(
      /BUILD_MANAGER\[1\]\.ALLOWED_WORKER_COUNT: expected a whole number ≥ 1, got "3"/,
    );
  });

  it('treats an empty value as absent, so the default applies', () => {
    const cfg = parseConfig(withManager('ORCHESTRATOR:\nORCHESTRATOR_PREFIX:\nEXECUTORS:\n- EXECUTOR: popen\n  NAME:'), { env: {} });
    expect(cfg.manager.ORCHESTRATOR).toEqual({ kind: 'memory' });
    expect(cfg.manager.ORCHESTRATOR_PREFIX).toBe('');
    expect(cfg.manager.EXECUTORS[0].NAME).toBe('PopenExecutor');
  });

  it('resolves the manager hostname: environment, then BUILDMAN_HOSTNAME, then SERVER_HOSTNAME, then localhost', () => {
    const manager = 'EXECUTORS: [{EXECUTOR: popen}]';
    const both = withManager(manager, 'SERVER_HOSTNAME: quay.example.com\nBUILDMAN_HOSTNAME: bm.example.com:55443');
    expect(parseConfig(both, { env: { BUILDMAN_HOSTNAME: 'env.example.com' } }).BUILDMAN_HOSTNAME).toBe('env.example.com');
    expect(parseConfig(both, { env: {} }).BUILDMAN_HOSTNAME).toBe('bm.example.com:55443');
    expect(parseConfig(withManager(manager, 'SERVER_HOSTNAME: quay.example.com'), { env: {} }).BUILDMAN_HOSTNAME).toBe('quay.example.com');
    expect(parseConfig(withManager(manager), { env: {} }).BUILDMAN_HOSTNAME).toBe('localhost');
  });
});

describe('command-line overrides', () => {
  const file = withManager(
    'EXECUTORS: [{EXECUTOR: popen}]',
    'BUILDMAN_GRPC_PORT: 6000\nBUILDMAN_HTTP_HOST: 0.0.0.0\nBUILDMAN_HTTP_PORT: 7000\nBUILDMAN_DATA_DIR: /var/lib/buildman',
  );

  it('take the file values when absent, with the public URL pointing at loopback for a wildcard host', () => {
    const cfg = parseConfig(file, { env: {} });
    expect(cfg.server).toMatchObject({ grpcPort: 6000, httpHost: '0.0.0.0', httpPort: 7000, dataDir: '/var/lib/buildman' });
    expect(cfg.server.publicUrl).toBe('http://127.0.0.1:7000');
  });

  it('win over the file, and the public URL follows the final host and port', () => {
    const cfg = parseConfig(file, {
      env: {},
      cwd: '/home/op',
      overrides: { grpcPort: 0, httpPort: 9000, grpcHost: '127.0.0.1', httpHost: '10.0.0.5', dataDir: 'state' },
    });
    expect(cfg.server).toEqual({
      grpcHost: '127.0.0.1',
      grpcPort: 0,
      httpHost: '10.0.0.5',
      httpPort: 9000,
      dataDir: '/home/op/state',
      publicUrl: 'http://10.0.0.5:9000',
      maxContextBytes: 100 * 1024 * 1024,
    });
  });

  it('leave an explicit BUILDMAN_PUBLIC_URL alone', () => {
    const cfg = parseConfig(withManager('EXECUTORS: [{EXECUTOR: popen}]', 'BUILDMAN_PUBLIC_URL: https://builds.example.com/'), {
      env: {},
      overrides: { httpPort: 9000 },
    });
    expect(cfg.server.publicUrl).toBe('https://builds.example.com');
  });

  it('are checked too, and named by their flag', () => {
    expect(() => parseConfig(file, { env: {}, overrides: { grpcPort: Number.NaN } })).toThrow(/--grpc-port: expected a whole number from 0 to 65535, got NaN/);
  });
});

describe('unknown keys', () => {
  it('are collected with full paths and are not fatal; common Quay keys are ignored silently', () => {
    const cfg = parseConfig(
      withManager(
        `
ALLOWED_WORKER_CONT: 3
ORCHESTRATOR:
  REDIS_HOST: redis
  REDIS_TIMEOUT: 5
EXECUTORS:
- EXECUTOR: popen
  BUILDER_BINARY: /bin/true`,
        `DB_URI: postgresql://quay:dbpass99@db/quay
DISTRIBUTED_STORAGE_CONFIG:
  default: [LocalStorage, {storage_path: /datastorage}]
FEATURE_MAILING: false
SECRET_KEY: abc-secret-key
BUILDMAN_GRPC_PROT: 5000
SOMETHING_ELSE: 1`,
      ),
      { env: {} },
    );
    expect(cfg.unknownKeys).toEqual([
      'BUILDMAN_GRPC_PROT',
      'SOMETHING_ELSE',
      'BUILD_MANAGER[1].ALLOWED_WORKER_CONT',
      'BUILD_MANAGER[1].ORCHESTRATOR.REDIS_TIMEOUT',
      'BUILD_MANAGER[1].EXECUTORS[0].BUILDER_BINARY',
    ]);
  });

  it('include the legacy pair when EXECUTORS is also given, as Quay then ignores it', () => {
    const cfg = parseConfig(withManager('EXECUTORS: [{EXECUTOR: popen}]\nEXECUTOR: ec2\nEXECUTOR_CONFIG: {}'), { env: {} });
    expect(cfg.unknownKeys).toEqual(['BUILD_MANAGER[1].EXECUTOR', 'BUILD_MANAGER[1].EXECUTOR_CONFIG']);
    expect(cfg.manager.EXECUTORS.map((e) => e.EXECUTOR)).toEqual(['popen']);
  });

  it('are listed after the problems when a file fails, since a typo often causes the failure', () => {
    const err = catchConfigError(() =>
      parseConfig(withManager('EXECUTORS:\n- EXECUTOR: ec2\n  EC2_REGOIN: us-east-1\n  EC2_INSTANCE_TYPE: t3.large\n  WORKER_TAG: v1'), { env: {} }),
    );
    expect(err.message).toContain('BUILD_MANAGER[1].EXECUTORS[0].EC2_REGION: required for an ec2 executor (e.g. us-east-1)');
    expect(err.message).toContain('unknown keys, perhaps misspelt: BUILD_MANAGER[1].EXECUTORS[0].EC2_REGOIN');
  });
});

describe('secrets', () => {
  const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\n';

  it('are collected from every secret key, URL passwords and inline private keys', async () => {
    const cfg = await loadConfig({ file: example, env: {} });
    expect(cfg.secrets.sort()).toEqual(['quay-redis-password', 'quaypass', 'some-key', 'some-secret', 'some-token']);

    const other = parseConfig(
      withManager(
        `
EXECUTORS:
- EXECUTOR: kubernetes
  WORKER_TAG: v1
  K8S_API_TLS_CERT: /certs/client.crt
  K8S_API_TLS_KEY: ${JSON.stringify(pem)}`,
        'DB_URI: postgresql://quay:db%40pass@db/quay\nBUILDLOGS_REDIS: {host: redis, password: logs-redis-pw}',
      ),
      { env: {} },
    );
    expect(other.secrets).toEqual(expect.arrayContaining(['db%40pass', 'db@pass', 'logs-redis-pw', pem]));
    expect(other.secrets).not.toContain('/certs/client.crt');
  });

  it('never appear in describeConfig', async () => {
    const cfg = await loadConfig({ file: example, env: {} });
    const text = describeConfig(cfg, { source: example });
    expect(cfg.secrets.length).toBeGreaterThan(0);
    for (const secret of cfg.secrets) expect(text).not.toContain(secret);
    expect(text).toContain('redis quay-redis-host:6379 db 0 (TLS, password set)');
    expect(text).toMatch(/1\. openshift \(kubernetes\)[^\n]*\n\s+2\. EC2Executor \(ec2\)/);
    expect(text).toContain('worker cap:');
    expect(text).toContain('0.0.0.0:50051');
  });

  it('are scrubbed from describeConfig even where a secret equals a shown value', () => {
    const cfg = parseConfig(withManager('EXECUTORS: [{EXECUTOR: popen, NAME: hunter2hunter2}]', 'MAIL_PASSWORD: hunter2hunter2'), {
      env: {},
    });
    expect(describeConfig(cfg)).not.toContain('hunter2hunter2');
    expect(describeConfig(cfg)).toContain('[REDACTED] (popen)');
  });
});

describe('loading files', () => {
  it('reads a file relative to cwd', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'buildman-config-'));
    writeFileSync(join(dir, 'config.yaml'), withManager('EXECUTORS: [{EXECUTOR: popen, NAME: mine}]'));
    const cfg = await loadConfig({ file: 'config.yaml', cwd: dir, env: {} });
    expect(cfg.manager.EXECUTORS[0].NAME).toBe('mine');
  });

  it('names the path of a missing file', async () => {
    const path = resolve(tmpdir(), 'no-such-buildman-config.yaml');
    const err = await loadConfig({ file: path }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).message).toContain(`config file not found: ${path}`);
    expect((err as ConfigError).issues).toEqual([(err as ConfigError).message]);
  });
});

function catchConfigError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('expected a ConfigError');
}
