import { queueScript } from './queue-script.js';

/**
 * Puts an item back: not leased, available after now + ARGV[6] ms, one retry given back when
 * ARGV[7] is '1'. ARGV[5] id. Returns 1 when it has retries left, 0 when not or when it is gone.
 */
export const incomplete6 = queueScript(
  'incomplete-6',
  `
local id = ARGV[5]
local key = itemKey(id)
if redis.call('EXISTS', key) == 0 then return 0 end
redis.call('HSET', key, 'leased', '0', 'after', now + tonumber(ARGV[6]))
local retries = tonumber(redis.call('HGET', key, 'retries'))
if ARGV[7] == '1' then retries = redis.call('HINCRBY', key, 'retries', 1) end
place(id)
-- Even while the item waits, its repository is free again for its siblings.
announce('available')
if retries > 0 then return 1 end
return 0
`,
);
