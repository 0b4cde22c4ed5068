import { describe, expect, it } from 'vitest';
import { redact, redactObject, REDACTED } from '../../src/util/redact.js';

describe('redact', () => {
  it('replaces every occurrence of every secret', () => {
    expect(redact('user quay with quaypass at redis://:quaypass@h, token some-token', ['quaypass', 'some-token'])).toBe(
      `user quay with ${REDACTED} at redis://:${REDACTED}@h, token ${REDACTED}`,
    );
  });

  it('leaves secrets shorter than 4 characters alone, so ordinary words survive', () => {
    expect(redact('the abc of it', ['abc', ''])).toBe('the abc of it');
  });

  it('scrubs a longer secret whole even when a shorter one is inside it', () => {
    expect(redact('key=abcd-efgh', ['abcd', 'abcd-efgh'])).toBe(`key=${REDACTED}`);
  });

  it('treats secrets as text, not patterns', () => {
    expect(redact('p.a+s(s) and pXa+s(s)', ['p.a+s(s)'])).toBe(`${REDACTED} and pXa+s(s)`);
  });
});

describe('redactObject', () => {
  it('deep-copies, scrubbing strings and keys and leaving the original untouched', () => {
    const original = {
      url: 'redis://:hunter22@redis',
      nested: [{ password: 'hunter22', n: 3, ok: true, none: null }],
      hunter22: 'as a key',
      when: new Date(0),
      tags: new Set(['hunter22']),
      byName: new Map([['k', 'hunter22!']]),
    };
    const copy = redactObject(original, ['hunter22']);
    expect(copy).toEqual({
      url: `redis://:${REDACTED}@redis`,
      nested: [{ password: REDACTED, n: 3, ok: true, none: null }],
      [REDACTED]: 'as a key',
      when: new Date(0),
      tags: new Set([REDACTED]),
      byName: new Map([['k', `${REDACTED}!`]]),
    });
    expect(original.nested[0].password).toBe('hunter22');
    expect(copy.nested).not.toBe(original.nested);
  });

  it('scrubs an error message and stack, keeping it an Error', () => {
    const copy = redactObject(new Error('login failed for hunter22'), ['hunter22']);
    expect(copy).toBeInstanceOf(Error);
    expect(copy.message).toBe(`login failed for ${REDACTED}`);
    expect(copy.stack).not.toContain('hunter22');
  });

  it('copes with cycles', () => {
    const a: { self?: unknown; s: string } = { s: 'hunter22' };
    a.self = a;
    const copy = redactObject(a, ['hunter22']);
    expect(copy.s).toBe(REDACTED);
    expect(copy.self).toBe(copy);
  });
});
