import { queueScript } from './queue-script.js';

/**
 * Moves an item's lease end to now + ARGV[6] ms, only when that is more than ARGV[7] ms beyond the
 * current end (Quay's minimum extension, so frequent heartbeats do not each write). ARGV[5] id.
 * Returns 1 when it moved.
 */
export const extend6 = queueScript(
  'extend-6',
  `
local id = ARGV[5]
local key = itemKey(id)
local current = redis.call('HGET', key, 'expires')
if not current then return 0 end
local expires = now + tonumber(ARGV[6])
if expires - tonumber(current) <= tonumber(ARGV[7]) then return 0 end
redis.call('HSET', key, 'expires', expires)
place(id)
announce('changed')
return 1
`,
);
