import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/util/logger.js';

/** A logger whose JSON lines are kept, so a test can assert what was warned about. */
export function captureLogger(level = 'debug'): { logger: Logger; lines: () => Array<Record<string, unknown>> } {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      raw.push(...chunk.toString().split('\n').filter(Boolean));
      done();
    },
  });
  return {
    logger: createLogger({ level, destination }),
    lines: () => raw.map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}
