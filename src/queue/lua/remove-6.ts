import { queueScript } from './queue-script.js';

/**
 * Deletes an item whatever its state (complete, cancel). ARGV[5] id. Returns 0 when it did not exist,
 * 2 when it was running (its repository is now free), 1 otherwise.
 */
export const remove6 = queueScript(
  'remove-6',
  `
local id = ARGV[5]
local key = itemKey(id)
local f = redis.call('HMGET', key, 'queue', 'at', 'leased', 'expires')
if not f[1] then return 0 end
unplace(id, f[1], f[2])
redis.call('DEL', key)
refreshHead(f[1])
-- A running item held its repository: removing it may let a sibling run.
if f[3] == '1' and tonumber(f[4]) > now then
  announce('available')
  return 2
end
announce('changed')
return 1
`,
);
