import { BuildmanError } from '../errors/buildman-error.js';
import { redisUnavailable } from '../redis/redis-connection.js';

/**
 * Runs one Redis operation with a deadline. ioredis gives up on its own after a few reconnect
 * attempts, but a server that accepts and never answers would hold a command forever, so every
 * store operation also has a wall-clock limit. Failures become `redisUnavailable` (retryable);
 * our own typed errors (a 409, a 413) pass through unchanged.
 */
export function withDeadline<T>(op: Promise<T>, timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(redisUnavailable(new Error(`no reply within ${timeoutMs} ms`))), timeoutMs);
    op.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        clearTimeout(timer);
        reject(err instanceof BuildmanError ? err : redisUnavailable(err));
      },
    );
  });
}

/** EXEC and pipeline replies carry per-command errors instead of rejecting; this surfaces the first. */
export function repliesOrThrow(results: Array<[Error | null, unknown]> | null): unknown[] {
  if (!results) throw new Error('transaction aborted');
  for (const [err] of results) if (err) throw err;
  return results.map(([, value]) => value);
}
