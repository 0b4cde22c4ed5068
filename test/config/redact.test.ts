import { describe, expect, it } from 'vitest';
import { redact, REDACTED } from '../../src/util/redact.js';

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
