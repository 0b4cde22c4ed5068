/**
 * The API server's `Status` error bodies, with the reasons and message shapes a real
 * kube-apiserver uses, so that client code meets what it would meet in a cluster.
 */

export interface StatusCause {
  reason: string;
  message: string;
  field?: string;
}

export interface StatusDetails {
  name?: string;
  group?: string;
  kind?: string;
  uid?: string;
  causes?: StatusCause[];
  retryAfterSeconds?: number;
}

export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  details?: StatusDetails;
  code: number;
}

/** A failure the handler throws; the server turns it into a Status response. */
export class StatusError extends Error {
  constructor(
    readonly status: KubeStatus,
    readonly headers: Record<string, string> = {},
  ) {
    super(status.message);
  }
}

export function failure(code: number, reason: string, message: string, details?: StatusDetails): StatusError {
  const status: KubeStatus = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details) status.details = details;
  return new StatusError(status);
}

export function success(details: StatusDetails): KubeStatus {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details, code: 200 };
}

/** `jobs.batch`, `pods`: how the API server names a resource in messages. */
export function qualified(resource: string, group: string): string {
  return group ? `${resource}.${group}` : resource;
}

export const unauthorized = (): StatusError => failure(401, 'Unauthorized', 'Unauthorized');

export function forbidden(user: string, verb: string, resource: string, group: string, namespace: string): StatusError {
  const groupText = group ? `"${group}"` : '""';
  return failure(
    403,
    'Forbidden',
    `${qualified(resource, group)} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group ${groupText} in the namespace "${namespace}"`,
    { group, kind: resource },
  );
}

export function notFound(resource: string, group: string, name: string): StatusError {
  return failure(404, 'NotFound', `${qualified(resource, group)} "${name}" not found`, { name, group, kind: resource });
}

export const noRoute = (): StatusError => failure(404, 'NotFound', 'the server could not find the requested resource');

export function alreadyExists(resource: string, group: string, name: string): StatusError {
  return failure(409, 'AlreadyExists', `${qualified(resource, group)} "${name}" already exists`, { name, group, kind: resource });
}

export function invalid(kind: string, group: string, name: string, causes: StatusCause[]): StatusError {
  const list = causes.map((c) => (c.field ? `${c.field}: ${c.message}` : c.message));
  const text = list.length === 1 ? list[0] : `[${list.join(', ')}]`;
  return failure(422, 'Invalid', `${kind}.${group} "${name}" is invalid: ${text}`, { name, group, kind, causes });
}

export function quotaExceeded(resource: string, group: string, name: string, quota: string, used: number, limit: number): StatusError {
  const counted = `count/${qualified(resource, group)}`;
  return failure(
    403,
    'Forbidden',
    `${qualified(resource, group)} "${name}" is forbidden: exceeded quota: ${quota}, requested: ${counted}=1, used: ${counted}=${used}, limited: ${counted}=${limit}`,
    { name, group, kind: resource },
  );
}

export const badRequest = (message: string): StatusError => failure(400, 'BadRequest', message);

export function methodNotAllowed(method: string): StatusError {
  return failure(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method})`);
}

export function internalError(message = 'Internal error occurred: etcdserver: request timed out'): StatusError {
  return failure(500, 'InternalError', message);
}

export function serviceUnavailable(): StatusError {
  return failure(503, 'ServiceUnavailable', 'the server is currently unable to handle the request');
}

export function tooManyRequests(retryAfterSeconds: number): StatusError {
  const err = failure(429, 'TooManyRequests', 'Too many requests, please try again later.', { retryAfterSeconds });
  return new StatusError(err.status, { 'Retry-After': String(retryAfterSeconds) });
}

/** A Status for any injected code, with the reason the API server uses for it. */
export function statusForCode(code: number, retryAfterSeconds = 1): StatusError {
  switch (code) {
    case 429:
      return tooManyRequests(retryAfterSeconds);
    case 500:
      return internalError();
    case 503:
      return serviceUnavailable();
    case 504:
      return failure(504, 'Timeout', 'Timeout: request did not complete within the allotted timeout');
    default:
      return failure(code, code >= 500 ? 'InternalError' : 'BadRequest', `injected failure ${code}`);
  }
}
