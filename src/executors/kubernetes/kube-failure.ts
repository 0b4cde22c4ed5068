import { ApiException } from '@kubernetes/client-node';
import type { KubernetesExecutorConfig } from '../../config/config-types.js';
import { PermanentError, type BuildmanError } from '../../errors/buildman-error.js';
import { classifyHttpFailure, classifyNetworkFailure, type FailureContext } from '../executor-errors.js';

/** The HTTP status of a client-node failure, when the API server answered. */
export function apiStatus(err: unknown): number | undefined {
  return err instanceof ApiException && typeof err.code === 'number' ? err.code : undefined;
}

/** The response body as text (client-node gives the raw text, or nothing for a 401). */
export function apiBody(err: unknown): string {
  if (!(err instanceof ApiException)) return '';
  const body: unknown = err.body;
  if (typeof body === 'string') return body;
  if (body && typeof body === 'object') return JSON.stringify(body);
  return err.code === 401 ? 'Unauthorized' : '';
}

/** A ResourceQuota refusal (403 `exceeded quota`), which classifies as a capacity error. */
export function isQuotaRefusal(err: unknown): boolean {
  return apiStatus(err) === 403 && /exceeded quota/i.test(apiBody(err));
}

/**
 * Any client-node failure as a BuildmanError whose message names the executor, the call and what
 * to fix: API answers through classifyHttpFailure, everything else through classifyNetworkFailure.
 */
export function kubeFailure(err: unknown, config: KubernetesExecutorConfig, server: string, action: string): BuildmanError {
  const where: FailureContext = { executor: `executor ${config.NAME} (${config.EXECUTOR} at ${server})`, action };
  const status = apiStatus(err);
  if (status !== undefined) return classifyHttpFailure(status, apiBody(err), err, where);

  const e = err as NodeJS.ErrnoException | undefined;
  // Our per-request timeout aborts the fetch; say which setting it was.
  if (e?.name === 'AbortError' || e?.name === 'TimeoutError') {
    const timeout = Object.assign(new Error(`no answer within K8S_API_TIMEOUT=${config.K8S_API_TIMEOUT}s`), { code: 'ETIMEDOUT', cause: err });
    return classifyNetworkFailure(timeout, where);
  }
  // client-node reads the CA, certificate and key files on every request.
  if ((e?.code === 'ENOENT' || e?.code === 'EACCES') && typeof e.path === 'string') {
    return new PermanentError(
      `${where.executor}: ${action} failed: cannot read ${e.path} (${e.code}); check K8S_API_TLS_CA, K8S_API_TLS_CERT and K8S_API_TLS_KEY`,
      'INVALID_CONFIG',
      err,
    );
  }
  return classifyNetworkFailure(err, where);
}
