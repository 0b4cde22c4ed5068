import { tmpdir } from 'node:os';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, parseConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors/buildman-error.js';

/** A file with `manager` as BUILD_MANAGER[1]. */
function withManager(manager: string, top = ''): string {
  const body = manager
    .trim()
    .split('\n')
    .map((line, i) => (i === 0 ? `- ${line}` : `  ${line}`))
    .join('\n');
  return `${top}\nBUILD_MANAGER:\n- ephemeral\n${body}\n`;
}

const EC2 = `- EXECUTOR: ec2
  EC2_REGION: us-east-1
  EC2_INSTANCE_TYPE: t3.large
  WORKER_TAG: v1`;

/** The issues of the ConfigError that parsing `yaml` throws; each is also a line of the message. */
function issuesOf(yaml: string): readonly string[] {
  try {
    parseConfig(yaml, { source: 'test.yaml', env: {} });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const lines = err.message.split('\n');
    for (const issue of err.issues) expect(lines).toContain(issue);
    return err.issues;
  }
  throw new Error('expected the config to be refused');
}

describe('each kind of mistake is reported at its key path', () => {
  it('wrong type', () => {
    expect(issuesOf(withManager(`ALLOWED_WORKER_COUNT: ten\nEXECUTORS:\n${EC2}`))).toEqual([
      'BUILD_MANAGER[1].ALLOWED_WORKER_COUNT: expected a whole number ≥ 1, got "ten"',
    ]);
  });

  it('text given where YAML reads a number says to quote it', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n- EXECUTOR: kubernetes\n  WORKER_TAG: 3.10`))).toEqual([
      'BUILD_MANAGER[1].EXECUTORS[0].WORKER_TAG: expected an image tag, got 3.1 (YAML read it as a number; put the value in quotes)',
    ]);
  });

  it('missing required key', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n- EXECUTOR: popen\n- EXECUTOR: ec2\n  EC2_INSTANCE_TYPE: t3.large\n  WORKER_TAG: v1`))).toEqual([
      'BUILD_MANAGER[1].EXECUTORS[1].EC2_REGION: required for an ec2 executor (e.g. us-east-1)',
    ]);
  });

  it('WORKER_TAG is required for the ignition executors only', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n- EXECUTOR: kubernetes\n- EXECUTOR: kubernetesPodman\n- EXECUTOR: popen`))).toEqual([
      'BUILD_MANAGER[1].EXECUTORS[0].WORKER_TAG: required for a kubernetes executor: the tag of WORKER_IMAGE to run (e.g. latest)',
    ]);
  });

  it('bad enum value', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n- EXECUTOR: kubernetes\n  WORKER_TAG: v1\n  KUBERNETES_DISTRIBUTION: gke`))).toEqual([
      'BUILD_MANAGER[1].EXECUTORS[0].KUBERNETES_DISTRIBUTION: expected one of basic, openshift, got "gke"',
    ]);
  });

  it('unknown executor kind', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n${EC2}\n- EXECUTOR: nomad`))).toEqual([
      'BUILD_MANAGER[1].EXECUTORS[1].EXECUTOR: unknown executor kind "nomad": expected one of popen, ec2, kubernetes, kubernetesPodman',
    ]);
    expect(issuesOf(withManager(`EXECUTOR: lambda`))).toEqual([
      'BUILD_MANAGER[1].EXECUTOR: unknown executor kind "lambda": expected one of popen, ec2, kubernetes, kubernetesPodman',
    ]);
  });

  it('duplicate NAME, naming both paths', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n${EC2}\n- EXECUTOR: popen\n  NAME: local\n${EC2}`))).toEqual([
      'BUILD_MANAGER[1].EXECUTORS[2].NAME: duplicate executor name "EC2Executor" (the default NAME for ec2), also used by BUILD_MANAGER[1].EXECUTORS[0].NAME; give each executor its own NAME',
    ]);
  });

  it('legacy REDIS_PREFIX', () => {
    expect(issuesOf(withManager(`ORCHESTRATOR:\n  REDIS_HOST: redis\n  REDIS_PREFIX: buildman/\nEXECUTORS:\n${EC2}`))).toEqual([
      'BUILD_MANAGER[1].ORCHESTRATOR.REDIS_PREFIX: legacy prefix: use ORCHESTRATOR_PREFIX (in BUILD_MANAGER[1], next to ORCHESTRATOR) instead',
    ]);
  });

  it('an ORCHESTRATOR whose first key names no backend', () => {
    expect(issuesOf(withManager(`ORCHESTRATOR:\n  REDDIS_HOST: redis\nEXECUTORS:\n${EC2}`))).toEqual([
      'BUILD_MANAGER[1].ORCHESTRATOR.REDDIS_HOST: the first key chooses the backend: REDIS_* keys for Redis, MEM_* (or no keys) for in-memory; "REDDIS_HOST" names neither',
    ]);
  });

  it('BUILD_MANAGER that is not a 2-item list, or of a kind buildman does not serve', () => {
    expect(issuesOf('FEATURE_BUILD_SUPPORT: true\n')).toEqual([
      expect.stringMatching(/^BUILD_MANAGER: required: a 2-item list \[ephemeral, \{/),
    ]);
    expect(issuesOf('BUILD_MANAGER: [ephemeral]')).toEqual([expect.stringMatching(/^BUILD_MANAGER: expected a 2-item list .*, got a list of 1 item$/)]);
    expect(issuesOf('BUILD_MANAGER: ephemeral')).toEqual([expect.stringMatching(/^BUILD_MANAGER: expected a 2-item list .*, got "ephemeral"$/)]);
    expect(issuesOf(`BUILD_MANAGER:\n- external\n- EXECUTORS:\n  ${EC2.replaceAll('\n', '\n  ')}`)).toEqual([
      expect.stringMatching(/^BUILD_MANAGER\[0\]: "external" is not served by buildman: .*; use ephemeral$/),
    ]);
    expect(issuesOf('BUILD_MANAGER: [enterprise, {EXECUTORS: [{EXECUTOR: popen}]}]')).toEqual([
      expect.stringMatching(/^BUILD_MANAGER\[0\]: "enterprise" is not served by buildman: it is Quay's default/),
    ]);
    expect(issuesOf('BUILD_MANAGER: [ephemeral, [popen]]')).toEqual([
      expect.stringMatching(/^BUILD_MANAGER\[1\]: expected a mapping of manager keys .*, got a list of 1 item$/),
    ]);
  });

  it('no executors at all', () => {
    expect(issuesOf(withManager('ALLOWED_WORKER_COUNT: 2'))).toEqual([
      expect.stringMatching(/^BUILD_MANAGER\[1\]\.EXECUTORS: required: a list of executors/),
    ]);
    expect(issuesOf(withManager('EXECUTORS: []'))).toEqual(['BUILD_MANAGER[1].EXECUTORS: expected a list of at least one executor, got a list of 0 items']);
  });

  it('STAGED_ROLLOUT out of range', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n- EXECUTOR: popen\n  STAGED_ROLLOUT: 1.5`))).toEqual([
      'BUILD_MANAGER[1].EXECUTORS[0].STAGED_ROLLOUT: expected a fraction from 0 to 1 (e.g. 0.25 for a quarter of namespaces), got 1.5',
    ]);
  });

  it('subnet without security groups', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n${EC2}\n  EC2_VPC_SUBNET_ID: subnet-1`))).toEqual([
      'BUILD_MANAGER[1].EXECUTORS[0].EC2_SECURITY_GROUP_IDS: required when EC2_VPC_SUBNET_ID is set: a list of security group ids for the builder (e.g. [sg-0123abcd])',
    ]);
  });

  it('half a client-certificate pair', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n- EXECUTOR: kubernetesPodman\n  K8S_API_TLS_CERT: /c.crt`))).toEqual([
      'BUILD_MANAGER[1].EXECUTORS[0].K8S_API_TLS_KEY: required when K8S_API_TLS_CERT is set: the client key file for that certificate',
    ]);
  });

  it('a hostname with a scheme', () => {
    expect(issuesOf(withManager(`EXECUTORS:\n${EC2}`, 'SERVER_HOSTNAME: https://quay.example.com'))).toEqual([
      expect.stringMatching(/^SERVER_HOSTNAME: expected the registry host .*, got "https:\/\/quay\.example\.com": leave out the scheme/),
    ]);
  });

  it('YAML syntax error, with its line and column', () => {
    const misindented = 'FEATURE_BUILD_SUPPORT: true\nBUILD_MANAGER:\n- ephemeral\n- ALLOWED_WORKER_COUNT: 1\n   EXECUTORS: []\n';
    expect(issuesOf(misindented)[0]).toBe('line 4, column 25: Nested mappings are not allowed in compact mappings');
    expect(issuesOf('A: 1\nB: [1, 2\nC: 3\n')).toEqual(['line 3, column 1: Flow sequence in block collection must be sufficiently indented and end with a ]']);
    expect(issuesOf('A: 1\n\tB: 2\n')).toEqual(['line 2, column 1: Tabs are not allowed as indentation']);
    expect(issuesOf('A: 1\nB: 2\nA: 3\n')).toEqual(['line 3, column 1: Map keys must be unique']);
  });

  it('a top level that is not a mapping', () => {
    expect(issuesOf('- ephemeral\n')).toEqual([expect.stringMatching(/^\(top level\): expected a mapping of config keys .*, got a list of 1 item$/)]);
  });

  it('missing file', async () => {
    const path = resolve(tmpdir(), 'buildman-missing', 'config.yaml');
    await expect(loadConfig({ file: path })).rejects.toThrow(new RegExp(`^config file not found: ${path.replaceAll('.', '\\.')}`));
  });
});

describe('the error as a whole', () => {
  it('lists every problem at once, one per line, across sections', () => {
    const yaml = withManager(
      `ALLOWED_WORKER_COUNT: 0
ORCHESTRATOR: {REDIS_HOST: redis, REDIS_PORT: http}
EXECUTORS:
- EXECUTOR: ec2
- EXECUTOR: kubernetes
  WORKER_TAG: v1
  IMAGE_PULL_POLICY: Sometimes`,
      'BUILDMAN_HTTP_PORT: -1\nPREFERRED_URL_SCHEME: ftp',
    );
    let error: ConfigError | undefined;
    try {
      parseConfig(yaml, { source: '/etc/quay/config.yaml', env: {} });
    } catch (err) {
      error = err as ConfigError;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect(error!.code).toBe('INVALID_CONFIG');
    expect(error!.retryable).toBe(false);
    expect(error!.message.split('\n')[0]).toBe('/etc/quay/config.yaml: 8 problems:');
    expect([...error!.issues].sort()).toEqual(
      [
        'PREFERRED_URL_SCHEME: expected one of http, https, got "ftp"',
        'BUILDMAN_HTTP_PORT: expected a whole number from 0 to 65535, got -1',
        'BUILD_MANAGER[1].ALLOWED_WORKER_COUNT: expected a whole number ≥ 1, got 0',
        'BUILD_MANAGER[1].ORCHESTRATOR.REDIS_PORT: expected a whole number from 1 to 65535, got "http"',
        'BUILD_MANAGER[1].EXECUTORS[0].EC2_REGION: required for an ec2 executor (e.g. us-east-1)',
        'BUILD_MANAGER[1].EXECUTORS[0].EC2_INSTANCE_TYPE: required for an ec2 executor (e.g. t3.large)',
        'BUILD_MANAGER[1].EXECUTORS[0].WORKER_TAG: required for an ec2 executor: the tag of WORKER_IMAGE to run (e.g. latest)',
        'BUILD_MANAGER[1].EXECUTORS[1].IMAGE_PULL_POLICY: expected one of Always, IfNotPresent, Never, got "Sometimes"',
      ].sort(),
    );
  });
});
