import { queueScript } from './queue-script.js';

/**
 * Adds an item. ARGV[5] id, [6] queue name, [7] body, [8] retries, [9] available_after (ms) or '' for
 * now, [10] stateId. Returns 1, or 0 when the id exists already (never overwrite an item).
 */
export const put6 = queueScript(
  'put-6',
  `
local id = ARGV[5]
local key = itemKey(id)
if redis.call('EXISTS', key) == 1 then return 0 end
local after = tonumber(ARGV[9]) or now
redis.call('HSET', key, 'queue', ARGV[6], 'body', ARGV[7], 'retries', ARGV[8], 'state', ARGV[10],
  'after', after, 'leased', '0', 'expires', '0', 'seq', redis.call('INCR', seqKey), 'at', 'none')
place(id)
announce('available')
return 1
`,
);
