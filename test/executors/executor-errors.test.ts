import { describe, expect, it } from 'vitest';
import { CapacityError, InfraError, PermanentError } from '../../src/errors/buildman-error.js';
import { classifyExecutorFailure, classifyHttpFailure, classifyNetworkFailure, isNetworkFailure } from '../../src/executors/executor-errors.js';

const where = { executor: 'k8s-main', action: 'create Job' };
const sysErr = (code: string, message = code) => Object.assign(new Error(message), { code });

describe('classifyHttpFailure', () => {
  it.each([
    [403, 'jobs.batch "x" is forbidden: exceeded quota: compute, requested: pods=1', CapacityError, 'EXECUTOR_CAPACITY'],
    [500, 'InsufficientInstanceCapacity: We currently do not have sufficient capacity', CapacityError, 'EXECUTOR_CAPACITY'],
    [400, 'VcpuLimitExceeded: You have requested more vCPU capacity', CapacityError, 'EXECUTOR_CAPACITY'],
    [403, 'jobs.batch is forbidden: User "system:anonymous" cannot create resource "jobs"', InfraError, 'EXECUTOR_AUTH'],
    [401, 'Unauthorized', InfraError, 'EXECUTOR_AUTH'],
    [429, 'Too many requests', InfraError, 'EXECUTOR_THROTTLED'],
    [503, 'RequestLimitExceeded: Request limit exceeded.', InfraError, 'EXECUTOR_THROTTLED'],
    [500, 'etcdserver: request timed out', InfraError, 'EXECUTOR_UNAVAILABLE'],
    [502, '', InfraError, 'EXECUTOR_UNAVAILABLE'],
    [400, 'bad request', PermanentError, 'EXECUTOR_REJECTED'],
    [404, 'namespaces "builder" not found', PermanentError, 'EXECUTOR_REJECTED'],
    [422, 'Job.batch "x" is invalid', PermanentError, 'EXECUTOR_REJECTED'],
  ])('%i %s', (status, body, type, code) => {
    const err = classifyHttpFailure(status, body, undefined, where);
    expect(err).toBeInstanceOf(type);
    expect(err.code).toBe(code);
    expect(err.message).toMatch(new RegExp(`^k8s-main: create Job failed \\(HTTP ${status}\\)`));
  });

  it('auth failures are retryable (another executor may work); rejections are not', () => {
    expect(classifyHttpFailure(401, '').retryable).toBe(true);
    expect(classifyHttpFailure(422, '').retryable).toBe(false);
    expect(classifyHttpFailure(403, 'exceeded quota').kind).toBe('capacity');
  });

  it('says what to fix, keeps the cause, and keeps tokens out of the message', () => {
    const cause = new Error('sdk');
    const err = classifyHttpFailure(422, `env USERDATA: Invalid value: "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl" ${'x'.repeat(1000)}`, cause, where);
    expect(err.cause).toBe(cause);
    expect(err.message).not.toContain('eyJ');
    expect(err.message).toContain('<redacted>');
    expect(err.message).toContain('check the executor config');
    expect(err.message.length).toBeLessThan(600);
    expect(classifyHttpFailure(401, '', undefined, where).message).toContain('credentials');
  });
});

describe('classifyNetworkFailure', () => {
  it.each([
    ['ECONNREFUSED', /reachable/],
    ['ECONNRESET', /reachable/],
    ['ETIMEDOUT', /in time/],
    ['ENOTFOUND', /did not resolve/],
    ['EAI_AGAIN', /did not resolve/],
    ['CERT_HAS_EXPIRED', /TLS/],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', /TLS/],
    ['ERR_TLS_CERT_ALTNAME_INVALID', /TLS/],
  ])('%s → retryable EXECUTOR_UNREACHABLE', (code, fix) => {
    const err = classifyNetworkFailure(sysErr(code), where);
    expect(err).toBeInstanceOf(InfraError);
    expect(err.code).toBe('EXECUTOR_UNREACHABLE');
    expect(err.retryable).toBe(true);
    expect(err.message).toContain(`k8s-main: create Job failed (${code})`);
    expect(err.message).toMatch(fix);
    expect(isNetworkFailure(sysErr(code))).toBe(true);
  });

  it('looks through fetch-style wrappers to the system error', () => {
    const err = classifyNetworkFailure(new Error('fetch failed', { cause: sysErr('SELF_SIGNED_CERT_IN_CHAIN', 'self-signed certificate in certificate chain') }), where);
    expect(err.message).toContain('fetch failed: self-signed certificate in certificate chain');
    expect(err.message).toContain('TLS');
    expect(isNetworkFailure(new Error('x'))).toBe(false);
  });

  it('an AbortSignal timeout counts as unreachable', () => {
    const err = classifyNetworkFailure(Object.assign(new Error('The operation was aborted due to timeout'), { name: 'TimeoutError' }), where);
    expect(err.code).toBe('EXECUTOR_UNREACHABLE');
    expect(err.message).toMatch(/in time/);
  });
});

describe('classifyExecutorFailure', () => {
  it('AWS SDK v3 errors by $metadata.httpStatusCode and error name', () => {
    const aws = (name: string, status: number) => Object.assign(new Error('m'), { name, $metadata: { httpStatusCode: status } });
    expect(classifyExecutorFailure(aws('InsufficientInstanceCapacity', 500), where)).toBeInstanceOf(CapacityError);
    expect(classifyExecutorFailure(aws('AuthFailure', 401), where).code).toBe('EXECUTOR_AUTH');
    expect(classifyExecutorFailure(aws('InvalidAMIID.NotFound', 400), where).code).toBe('EXECUTOR_REJECTED');
  });

  it('Kubernetes ApiException by numeric code and body', () => {
    const k8s = Object.assign(new Error('HTTP-Code: 403'), { code: 403, body: { message: 'exceeded quota: pods' } });
    expect(classifyExecutorFailure(k8s, where)).toBeInstanceOf(CapacityError);
  });

  it('no status: a network failure; BuildmanErrors pass through', () => {
    expect(classifyExecutorFailure(sysErr('ECONNREFUSED'), where).code).toBe('EXECUTOR_UNREACHABLE');
    const own = new PermanentError('x', 'INVALID_CONFIG');
    expect(classifyExecutorFailure(own, where)).toBe(own);
  });
});
