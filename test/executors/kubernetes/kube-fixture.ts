import { vi } from 'vitest';
import { EXECUTOR_SCHEMAS } from '../../../src/config/executor-schemas.js';
import type { KubernetesExecutorConfig } from '../../../src/config/config-types.js';
import type { ExecutorContext } from '../../../src/executors/build-executor.js';
import { DEFAULT_EMULATOR_TOKEN, type KubeApiEmulator } from '../../emulators/kubernetes/kube-api-emulator.js';

export const BUILD_ID = '0f6c1c8e-5d3a-4b8e-9a43-2b1f6c1d9e10';
/** Shaped like a registration JWT, so redaction of token-like text is exercised too. */
export const REG_TOKEN = 'eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.eyJzdWIiOiJidWlsZCJ9.c2lnbmF0dXJl';

export interface LogEntry {
  level: 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg?: string;
}

/** An executor context with a capturing log. */
export function kubeContext(over: Partial<ExecutorContext> = {}): ExecutorContext & { logged: LogEntry[] } {
  const logged: LogEntry[] = [];
  const sink = (level: LogEntry['level']) => (obj: object, msg?: string) => void logged.push({ level, obj: obj as Record<string, unknown>, msg });
  return {
    managerHostname: 'buildman.example.com',
    grpcAddress: 'buildman.example.com:55443',
    installationId: 'bm-0123456789ab',
    registryHostname: 'quay.example.com',
    dataDir: '/tmp/buildman-k8s-test',
    log: { info: sink('info'), warn: sink('warn'), error: sink('error') },
    logged,
    ...over,
  };
}

/** An executor config as the config loader fills it (its defaults), from the keys a test sets. */
export function kubeConfig(keys: Record<string, unknown> = {}): KubernetesExecutorConfig {
  const kind = (keys.EXECUTOR as 'kubernetes' | 'kubernetesPodman' | undefined) ?? 'kubernetesPodman';
  const base: Record<string, unknown> = { EXECUTOR: kind };
  if (kind === 'kubernetes') base.WORKER_TAG = 'latest';
  return EXECUTOR_SCHEMAS[kind].parse({ ...base, ...keys }) as KubernetesExecutorConfig;
}

/** Keys that point an executor at the emulator with its default token over verified TLS. */
export function emulatorKeys(emulator: KubeApiEmulator): Record<string, unknown> {
  return { K8S_API_SERVER: emulator.address, SERVICE_ACCOUNT_TOKEN: DEFAULT_EMULATOR_TOKEN, K8S_API_TLS_CA: emulator.caFile, K8S_API_TIMEOUT: 5 };
}

/** Polls until `check` returns a value other than undefined/false (vitest's waitUntil, with this suite's pace). */
export function eventually<T>(check: () => T | Promise<T>, timeoutMs = 10_000): Promise<T> {
  return vi.waitUntil(check, { timeout: timeoutMs, interval: 20 }) as Promise<T>;
}
