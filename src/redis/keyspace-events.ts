import type { Redis } from 'ioredis';
import type { Logger } from '../util/logger.js';

/**
 * `notify-keyspace-events` flags that include keyspace events (`K`) for expired keys (`x`, or `A`
 * which contains it), keeping every flag the server already has. Quay overwrites the setting with
 * `Kx` (Q9), which switches off whatever else another application on the server relied on.
 */
export function withExpiredKeyspaceEvents(current: string): string {
  let flags = current;
  if (!flags.includes('K')) flags += 'K';
  if (!flags.includes('x') && !flags.includes('A')) flags += 'x';
  return flags;
}

/**
 * Turns on keyspace `expired` events, merged with the server's flags. Returns false when the server
 * refuses CONFIG (managed Redis often does): the caller's periodic sweep then does the expiry work.
 * Connection failures are thrown: the caller runs this again on the next reconnect.
 */
export async function enableExpiredKeyspaceEvents(redis: Redis, logger: Logger): Promise<boolean> {
  let current: string;
  try {
    const reply = await redis.call('CONFIG', 'GET', 'notify-keyspace-events');
    current = Array.isArray(reply) && typeof reply[1] === 'string' ? reply[1] : '';
    const wanted = withExpiredKeyspaceEvents(current);
    if (wanted !== current) await redis.call('CONFIG', 'SET', 'notify-keyspace-events', wanted);
    return true;
  } catch (err) {
    if (!isServerRefusal(err)) throw err;
    logger.warn(
      { err: (err as Error).message },
      'Redis refused CONFIG, so keyspace expiry events could not be switched on; expiries are found by the periodic sweep instead. ' +
        'Set notify-keyspace-events to include "Kx" on the server for prompt expiry, and REDIS_SKIP_KEYSPACE_EVENT_SETUP: true to skip this attempt.',
    );
    return false;
  }
}

/** An error reply from the server (unknown or forbidden command), as opposed to a lost connection. */
function isServerRefusal(err: unknown): boolean {
  return err instanceof Error && err.name === 'ReplyError';
}
