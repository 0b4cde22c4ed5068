import { BuildmanError, RequestError } from '../errors/buildman-error.js';

/** The one error shape the API answers with. */
export interface ErrorBody {
  error: { code: string; message: string; field?: string };
}

export interface ErrorReply {
  status: number;
  body: ErrorBody;
  /** True when the cause is ours, not the client's: worth an error log line. */
  internal: boolean;
}

const CODE_BY_STATUS: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHORIZED',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
};

/** Fastify's own wording for these is terse; say what to send instead. */
const FASTIFY_MESSAGES: Record<string, string> = {
  FST_ERR_CTP_INVALID_MEDIA_TYPE:
    'unsupported Content-Type: send application/json, or a tar/tar.gz context as application/x-tar, application/gzip or application/octet-stream',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'the JSON body is empty: send a build request object',
  FST_ERR_CTP_BODY_TOO_LARGE: 'the JSON body is too large (1 MiB at most); upload a context as a tar body instead',
};

/**
 * Maps anything a handler throws to a status and body: a `RequestError` keeps its status, other
 * buildman errors are 503 when retrying may help and 500 otherwise, Fastify's client errors
 * (bad JSON, wrong media type) keep theirs, and anything else is a 500 whose details stay in the log.
 */
export function toErrorReply(err: unknown): ErrorReply {
  if (err instanceof RequestError) {
    const error: ErrorBody['error'] = { code: CODE_BY_STATUS[err.status] ?? err.code, message: err.message };
    if (err.field) error.field = err.field;
    return { status: err.status, body: { error }, internal: false };
  }
  if (err instanceof BuildmanError) {
    return { status: err.retryable ? 503 : 500, body: { error: { code: err.code, message: err.message } }, internal: true };
  }
  const status = (err as { statusCode?: unknown })?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500) {
    const fastifyCode = String((err as { code?: unknown }).code ?? '');
    const message = FASTIFY_MESSAGES[fastifyCode] ?? (err as Error).message;
    return { status, body: { error: { code: CODE_BY_STATUS[status] ?? 'BAD_REQUEST', message } }, internal: false };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error; see the buildman log' } }, internal: true };
}
