import type { StatelyInspectionEvent } from '@statelyai/inspect';
import { describe, expect, it } from 'vitest';
import { inspectionJson } from '../../src/inspect/inspection-json.js';

const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJidWlsZCJ9.c2lnbmF0dXJl';

function event(payload: Record<string, unknown>): StatelyInspectionEvent {
  return {
    type: '@xstate.event',
    event: { type: 'x', ...payload },
    sourceId: undefined,
    sessionId: 'x:1',
    rootId: 'x:0',
    createdAt: '1',
    id: '1',
    _version: '0.7.2',
  };
}

describe('inspectionJson', () => {
  it('replaces secret-named fields, JWTs anywhere in a string, and the config’s secrets', () => {
    const json = inspectionJson(
      event({
        jobJwt: 'abc',
        nested: { registerToken: 'def', pullCredentials: { username: 'u', password: 'p' } },
        note: `worker said ${jwt} and s3cr3t-key-value`,
        phase: 'building',
      }),
      ['s3cr3t-key-value'],
    );
    const parsed = JSON.parse(json);
    expect(parsed.event).toEqual({
      type: 'x',
      jobJwt: '[REDACTED]',
      nested: { registerToken: '[REDACTED]', pullCredentials: '[REDACTED]' },
      note: 'worker said [REDACTED] and [REDACTED]',
      phase: 'building',
    });
    expect(json).not.toContain(jwt);
  });

  it('keeps an error’s name and message, which plain JSON would drop', () => {
    const parsed = JSON.parse(inspectionJson(event({ error: new TypeError('boom') }), []));
    expect(parsed.event.error).toEqual({ name: 'TypeError', message: 'boom' });
  });
});
