import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/util/logger.js';
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

describe('createLogger', () => {
  it('scrubs secret values in messages as redact does: a longer secret whole, even with a shorter one inside it', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ level: 'info', secrets: ['abcd', 'abcd-efgh'], destination });
    logger.info('key=abcd-efgh and abcd');
    logger.flush();
    await new Promise((r) => setImmediate(r));
    expect(JSON.parse(lines.join('')).msg).toBe(`key=${REDACTED} and ${REDACTED}`);
  });
});
