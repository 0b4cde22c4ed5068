/**
 * Turning control-plane failures into the error family, one place for every executor, so the
 * manager's fallback and retry decisions do not depend on which SDK failed:
 *
 * | failure                                              | error          | code                   |
 * |------------------------------------------------------|----------------|------------------------|
 * | refused / reset / timeout / DNS / TLS                | InfraError     | `EXECUTOR_UNREACHABLE` |
 * | quota, instance capacity (any status, by body)       | CapacityError  | `EXECUTOR_CAPACITY`    |
 * | 429, throttling codes                                | InfraError     | `EXECUTOR_THROTTLED`   |
 * | 401, 403                                             | InfraError     | `EXECUTOR_AUTH`        |
 * | 5xx, 408                                             | InfraError     | `EXECUTOR_UNAVAILABLE` |
 * | other 4xx (400, 404 on create, 409, 422)             | PermanentError | `EXECUTOR_REJECTED`    |
 *
 * Auth failures count as retryable: another executor may work, and credentials rotate.
 * Callers decide what a status means before classifying (a 404 on delete is success, not an error).
 */
import { BuildmanError, CapacityError, InfraError, PermanentError } from '../errors/buildman-error.js';

/** Which executor was doing what, for the message: `{ executor: 'k8s-main', action: 'create Job' }`. */
export interface FailureContext {
  executor: string;
  action: string;
}

const UNKNOWN_CONTEXT: FailureContext = { executor: 'executor', action: 'control-plane call' };
const BODY_EXCERPT = 300;

/** Quota and capacity refusals: Kubernetes ResourceQuota (403) and EC2 error codes (400/500). */
const CAPACITY = /exceeded quota|quota exceeded|InsufficientInstanceCapacity|InsufficientCapacity|InstanceLimitExceeded|VcpuLimitExceeded|MaxSpotInstanceCountExceeded|InsufficientFreeAddressesInSubnet|InsufficientAddressCapacity/i;
const THROTTLED = /RequestLimitExceeded|Throttling|ThrottlingException|TooManyRequests|SlowDown/;

const NETWORK_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'ETIMEDOUT', 'ESOCKETTIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN',
  'EHOSTUNREACH', 'EHOSTDOWN', 'ENETUNREACH', 'ENETDOWN', 'EPIPE',
  'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED',
]);
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_(GET|VERIFY)_|ERR_OSSL_)/;

/**
 * Classifies an HTTP error response from a control plane.
 * @param status the HTTP status (≥ 400)
 * @param body the response body or the SDK's error code and message (an excerpt goes into the message)
 * @param cause the original error, kept as `cause`
 * @param where names the executor and the call, so the message says where to look
 */
export function classifyHttpFailure(status: number, body: string, cause?: unknown, where: FailureContext = UNKNOWN_CONTEXT): BuildmanError {
  const prefix = `${where.executor}: ${where.action} failed (HTTP ${status})`;
  const detail = excerpt(body);
  const say = (fix: string) => `${prefix}${detail ? `: ${detail}` : ''}. ${fix}`;

  if (status !== 401 && CAPACITY.test(body)) {
    return new CapacityError(say('The control plane is out of quota or capacity; raise the quota, free capacity, or let builds fall back to another executor'), 'EXECUTOR_CAPACITY', cause);
  }
  if (status === 429 || THROTTLED.test(body)) {
    return new InfraError(say('The control plane is throttling requests; lower the executor rate limit or retry later'), 'EXECUTOR_THROTTLED', cause);
  }
  if (status === 401 || status === 403) {
    return new InfraError(say('The credentials were refused; check the executor\'s credentials (token, certificate, access key) and their permissions'), 'EXECUTOR_AUTH', cause);
  }
  if (status >= 500 || status === 408) {
    return new InfraError(say('The control plane had a server-side failure; it is retried'), 'EXECUTOR_UNAVAILABLE', cause);
  }
  if (status >= 400) {
    return new PermanentError(say('The control plane rejected the request; check the executor config (names, namespace, image, sizes) against what it accepts'), 'EXECUTOR_REJECTED', cause);
  }
  return new InfraError(say('Unexpected response from the control plane; it is retried'), 'EXECUTOR_UNAVAILABLE', cause);
}

/** Classifies a failure to reach the control plane at all (no HTTP response): always retryable. */
export function classifyNetworkFailure(err: unknown, where: FailureContext = UNKNOWN_CONTEXT): BuildmanError {
  if (err instanceof BuildmanError) return err;
  const code = errorCode(err);
  const message = chainMessage(err);
  const prefix = `${where.executor}: ${where.action} failed${code ? ` (${code})` : ''}: ${excerpt(message)}`;
  let fix = 'Check that the control plane\'s address in the executor config is right and reachable from the manager';
  if (code && TLS_CODE.test(code)) fix = 'TLS verification failed; check the CA (e.g. K8S_API_TLS_CA) and the server name in the executor config';
  else if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') fix = 'The host name did not resolve; check the address in the executor config and DNS';
  else if (isTimeout(err, code)) fix = 'The control plane did not answer in time; check its health and the timeout in the executor config';
  return new InfraError(`${prefix}. ${fix}`, 'EXECUTOR_UNREACHABLE', err);
}

/**
 * Classifies whatever an SDK threw: a response with a status (Kubernetes `ApiException.code`,
 * AWS `$metadata.httpStatusCode`, `statusCode`) goes to {@link classifyHttpFailure}, anything else to
 * {@link classifyNetworkFailure}. BuildmanErrors pass through unchanged.
 */
export function classifyExecutorFailure(err: unknown, where: FailureContext = UNKNOWN_CONTEXT): BuildmanError {
  if (err instanceof BuildmanError) return err;
  const status = httpStatus(err);
  if (status !== undefined) return classifyHttpFailure(status, responseText(err), err, where);
  return classifyNetworkFailure(err, where);
}

/** Whether something looks like a network-level failure (for callers that must tell before classifying). */
export function isNetworkFailure(err: unknown): boolean {
  const code = errorCode(err);
  return code !== undefined && (NETWORK_CODES.has(code) || TLS_CODE.test(code));
}

function httpStatus(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown; $metadata?: { httpStatusCode?: unknown } };
  for (const v of [e.$metadata?.httpStatusCode, e.statusCode, e.code]) {
    if (typeof v === 'number' && v >= 400 && v < 600) return v;
  }
  return undefined;
}

function responseText(err: unknown): string {
  const e = err as { name?: string; message?: string; body?: unknown; Code?: string };
  if (typeof e.body === 'string') return e.body;
  if (e.body && typeof e.body === 'object') return JSON.stringify(e.body);
  // AWS SDK v3: the error code is the name (`InsufficientInstanceCapacity`).
  return [e.Code ?? e.name, e.message].filter(Boolean).join(': ');
}

/** The system error code, looking through wrappers (`cause`) that SDKs add. */
function errorCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    const name = (e as { name?: unknown }).name;
    if (name === 'TimeoutError' || name === 'AbortError') return name;
  }
  return undefined;
}

function isTimeout(err: unknown, code: string | undefined): boolean {
  return code === 'ETIMEDOUT' || code === 'ESOCKETTIMEDOUT' || code === 'TimeoutError' || code === 'AbortError' || /^UND_ERR_.*TIMEOUT$/.test(code ?? '') || /timed? ?out/i.test(String((err as Error)?.message));
}

/** `fetch failed: self-signed certificate`: the wrapper's message and its causes'. */
function chainMessage(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const msg = e instanceof Error ? e.message : typeof e === 'object' ? '' : String(e);
    if (msg && !parts.some((p) => p.includes(msg))) parts.push(msg);
    if (typeof e !== 'object') break;
  }
  return parts.join(': ') || String(err);
}

/** A short, single-line excerpt with anything token-shaped (JWTs) removed: bodies can echo our requests. */
export function excerpt(text: string): string {
  const oneLine = text.replace(/eyJ[\w-]+\.[\w-]+\.[\w-]+/g, '<redacted>').replace(/\s+/g, ' ').trim().replace(/\.+$/, '');
  return oneLine.length > BODY_EXCERPT ? `${oneLine.slice(0, BODY_EXCERPT)}…` : oneLine;
}
