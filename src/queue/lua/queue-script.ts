import { PRELUDE } from './prelude.js';

/** A queue operation as one Lua script: atomic in Redis, so no two managers see a half-done change. */
export interface QueueScript {
  /** The ioredis command name it is defined under. */
  name: string;
  numberOfKeys: number;
  lua: string;
}

/** Every queue script takes the six index keys (see queue-keys.ts), hence the `-6` in their names. */
export const QUEUE_SCRIPT_KEYS = 6;

export function queueScript(name: string, body: string): QueueScript {
  return { name: `buildmanQueue:${name}`, numberOfKeys: QUEUE_SCRIPT_KEYS, lua: PRELUDE + body };
}
