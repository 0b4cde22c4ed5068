import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BuildmanError, InfraError, PermanentError } from '../../../src/errors/buildman-error.js';
import { apiServerUrl } from '../../../src/executors/kubernetes/kube-connection.js';
import { KubernetesExecutor } from '../../../src/executors/kubernetes/kubernetes-executor.js';
import { DEFAULT_EMULATOR_TOKEN, KubeApiEmulator } from '../../emulators/kubernetes/kube-api-emulator.js';
import { TestPki } from '../../emulators/kubernetes/test-pki.js';
import { BUILD_ID, kubeConfig, kubeContext, REG_TOKEN } from './kube-fixture.js';

let pki: TestPki;
let emulator: KubeApiEmulator;

beforeAll(async () => {
  pki = TestPki.create();
  emulator = await KubeApiEmulator.start({
    pki,
    tokens: { [DEFAULT_EMULATOR_TOKEN]: '*', 'other-namespace-only': ['elsewhere'] },
    clientCertUsers: { 'quay-buildman': ['builder'] },
  });
});
afterAll(async () => {
  await emulator.close();
  pki.remove();
});

function executor(keys: Record<string, unknown>): KubernetesExecutor {
  return new KubernetesExecutor(kubeConfig({ NAME: 'k8s-test', K8S_API_SERVER: emulator.address, K8S_API_TIMEOUT: 5, ...keys }), kubeContext());
}

async function failureOf(p: Promise<unknown>): Promise<BuildmanError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(BuildmanError);
  return err as BuildmanError;
}

describe('the API server address (Quay: https with credentials, else http)', () => {
  it('picks the scheme from the credentials, and keeps an explicit one', () => {
    expect(apiServerUrl(kubeConfig({ K8S_API_SERVER: 'api:6443', SERVICE_ACCOUNT_TOKEN: 't' }))).toBe('https://api:6443');
    expect(apiServerUrl(kubeConfig({ K8S_API_SERVER: 'api:6443', K8S_API_TLS_CERT: '/c', K8S_API_TLS_KEY: '/k' }))).toBe('https://api:6443');
    expect(apiServerUrl(kubeConfig({ K8S_API_SERVER: 'localhost:8080' }))).toBe('http://localhost:8080');
    expect(apiServerUrl(kubeConfig({ K8S_API_SERVER: 'https://api.example.com:6443/' }))).toBe('https://api.example.com:6443');
  });
});

describe('authentication and TLS', () => {
  it('a bearer token with VERIFY_TLS and the cluster CA works', async () => {
    const ex = executor({ SERVICE_ACCOUNT_TOKEN: DEFAULT_EMULATOR_TOKEN, K8S_API_TLS_CA: emulator.caFile, VERIFY_TLS: true });
    expect(await ex.runningCount()).toBe(0);
    expect(emulator.requests.at(-1)).toMatchObject({ status: 200, user: 'system:serviceaccount:builder:emulated-0' });
  });

  it('a client certificate signed by the cluster CA works, and the API server sees its CN as the user', async () => {
    const client = pki.clientCert('quay-buildman');
    const ex = executor({ K8S_API_TLS_CERT: client.certFile, K8S_API_TLS_KEY: client.keyFile, K8S_API_TLS_CA: emulator.caFile });
    const id = await ex.start({ buildId: BUILD_ID, attempt: 7, token: REG_TOKEN });
    expect(emulator.requests.at(-1)).toMatchObject({ method: 'POST', status: 201, user: 'quay-buildman' });
    await ex.stop({ buildId: BUILD_ID, attempt: 7, executionId: id });
    expect(emulator.job('builder', id)).toBeUndefined();
  });

  it('VERIFY_TLS: true without the CA is refused with a TLS error naming the fix', async () => {
    const ex = executor({ SERVICE_ACCOUNT_TOKEN: DEFAULT_EMULATOR_TOKEN, VERIFY_TLS: true });
    const err = await failureOf(ex.runningCount());
    expect(err).toBeInstanceOf(InfraError);
    expect(err.code).toBe('EXECUTOR_UNREACHABLE');
    expect(err.message).toMatch(/executor k8s-test \(kubernetesPodman at https:\/\/127\.0\.0\.1:\d+\)/);
    expect(err.message).toMatch(/certificate/i);
    expect(err.message).toContain('TLS verification failed; check the CA (e.g. K8S_API_TLS_CA)');
  });

  it('a CA that did not sign the server certificate is refused the same way', async () => {
    const foreign = pki.foreignCa();
    const ex = executor({ SERVICE_ACCOUNT_TOKEN: DEFAULT_EMULATOR_TOKEN, K8S_API_TLS_CA: foreign.certFile });
    const err = await failureOf(ex.runningCount());
    expect(err.code).toBe('EXECUTOR_UNREACHABLE');
    expect(err.message).toContain('TLS verification failed');
  });

  it('VERIFY_TLS: false works without the CA', async () => {
    const ex = executor({ SERVICE_ACCOUNT_TOKEN: DEFAULT_EMULATOR_TOKEN, VERIFY_TLS: false });
    expect(await ex.runningCount()).toBe(0);
  });

  it('a wrong token is a 401: retryable (another executor may work), naming the credentials to check', async () => {
    const ex = executor({ SERVICE_ACCOUNT_TOKEN: 'not-a-token', K8S_API_TLS_CA: emulator.caFile });
    const err = await failureOf(ex.start({ buildId: BUILD_ID, attempt: 1, token: REG_TOKEN }));
    expect(err).toBeInstanceOf(InfraError);
    expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_AUTH' });
    expect(err.message).toMatch(/executor k8s-test .*create Job .* failed \(HTTP 401\)/);
    expect(err.message).toContain('check the executor\'s credentials');
    expect(err.message).not.toContain(REG_TOKEN);
  });

  it('a client certificate from another CA is not a user: 401', async () => {
    const stranger = pki.clientCert('quay-buildman', pki.foreignCa());
    const ex = executor({ K8S_API_TLS_CERT: stranger.certFile, K8S_API_TLS_KEY: stranger.keyFile, K8S_API_TLS_CA: emulator.caFile });
    expect(await failureOf(ex.runningCount())).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_AUTH' });
    expect(emulator.requests.at(-1)!.status).toBe(401);
  });

  it('a token without rights to BUILDER_NAMESPACE is a 403 Forbidden: retryable auth failure', async () => {
    const ex = executor({ SERVICE_ACCOUNT_TOKEN: 'other-namespace-only', K8S_API_TLS_CA: emulator.caFile });
    const err = await failureOf(ex.runningCount());
    expect(err).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_AUTH' });
    expect(err.message).toContain('HTTP 403');
    expect(err.message).toContain('cannot list resource \\"jobs\\" in API group \\"batch\\" in the namespace \\"builder\\"');
  });

  it('an unreadable CA file is a config error naming the keys', async () => {
    const ex = executor({ SERVICE_ACCOUNT_TOKEN: DEFAULT_EMULATOR_TOKEN, K8S_API_TLS_CA: '/nonexistent/ca.crt' });
    const err = await failureOf(ex.runningCount());
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toContain('cannot read /nonexistent/ca.crt (ENOENT); check K8S_API_TLS_CA');
  });
});

describe('plain HTTP (no credentials, as Quay)', () => {
  it('talks http to an API server without authentication', async () => {
    const plain = await KubeApiEmulator.start({ plainHttp: true });
    try {
      const ex = new KubernetesExecutor(kubeConfig({ K8S_API_SERVER: plain.address }), kubeContext());
      const id = await ex.start({ buildId: BUILD_ID, attempt: 1, token: REG_TOKEN });
      expect(plain.url).toMatch(/^http:/);
      expect(plain.job('builder', id)).toBeDefined();
      expect(plain.requests[0]).toMatchObject({ method: 'POST', status: 201, user: 'system:anonymous' });
    } finally {
      await plain.close();
    }
  });
});
