/**
 * The typed error family. Every error says whether trying again could help:
 * - `retryable`: an infrastructure hiccup (network, 5xx, a dead Redis); the same call may work later.
 * - `capacity`: the control plane is full (quota, no instances); retry later or fall back.
 * - `permanent`: the request is wrong (bad config, bad token, bad input); retrying cannot help.
 */
export type FailureKind = 'retryable' | 'capacity' | 'permanent';

export class BuildmanError extends Error {
  readonly kind: FailureKind;
  /** A short machine-readable code, e.g. `EXECUTOR_UNREACHABLE`. */
  readonly code: string;

  constructor(message: string, opts: { kind: FailureKind; code: string; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.kind = opts.kind;
    this.code = opts.code;
    Object.setPrototypeOf(this, new.target.prototype);
  }

  get retryable(): boolean {
    return this.kind !== 'permanent';
  }
}

/** A control plane, Redis or network failure: retryable. */
export class InfraError extends BuildmanError {
  constructor(message: string, code = 'INFRA_UNAVAILABLE', cause?: unknown) {
    super(message, { kind: 'retryable', code, cause });
  }
}

/** The control plane refused for lack of room (quota, instance capacity): retryable later. */
export class CapacityError extends BuildmanError {
  constructor(message: string, code = 'NO_CAPACITY', cause?: unknown) {
    super(message, { kind: 'capacity', code, cause });
  }
}

/** Wrong configuration, request or state: not retryable. */
export class PermanentError extends BuildmanError {
  constructor(message: string, code = 'PERMANENT', cause?: unknown) {
    super(message, { kind: 'permanent', code, cause });
  }
}

/** A config file that cannot be used. `issues` name each key path and what was expected. */
export class ConfigError extends PermanentError {
  constructor(
    message: string,
    readonly issues: readonly string[] = [],
  ) {
    super(message, 'INVALID_CONFIG');
  }
}

/** A build token that fails verification. The message is what the worker sees after `Invalid build token: `. */
export class TokenError extends PermanentError {
  constructor(message: string) {
    super(message, 'INVALID_TOKEN');
  }
}

/** A request that names something wrong (a field, a build id): maps to HTTP 400/404/409. */
export class RequestError extends PermanentError {
  constructor(
    message: string,
    readonly status: 400 | 401 | 404 | 409 | 413 = 400,
    readonly field?: string,
  ) {
    super(message, status === 404 ? 'NOT_FOUND' : status === 409 ? 'CONFLICT' : 'BAD_REQUEST');
  }
}

/** Classifies anything thrown into the family; unknown errors count as retryable infrastructure failures. */
export function toBuildmanError(err: unknown): BuildmanError {
  if (err instanceof BuildmanError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new InfraError(message, 'UNKNOWN', err);
}
