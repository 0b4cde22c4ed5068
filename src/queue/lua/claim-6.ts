import { queueScript } from './queue-script.js';

/**
 * Claims the oldest ready item of a repository with nothing running: a lease until now + ARGV[5] ms,
 * retries − 1, the new stateId ARGV[6]. Returns {id, queue, body, retries, stateId} or nil.
 * Cost: O(log n) plus the due items it re-files (see promote); no scan of waiting items.
 */
export const claim6 = queueScript(
  'claim-6',
  `
promote()
while true do
  local q = redis.call('ZRANGE', headsKey, 0, 0)[1]
  if not q then return false end
  local id = redis.call('ZRANGE', repoReadyKey(q), 0, 0)[1]
  if not id then
    redis.call('ZREM', headsKey, q)
  elseif redis.call('EXISTS', itemKey(id)) == 0 then
    -- An evicted item: drop it from the indexes and look again.
    redis.call('ZREM', readyKey, id)
    redis.call('ZREM', repoReadyKey(q), id)
    refreshHead(q)
  else
    local key = itemKey(id)
    local retries = redis.call('HINCRBY', key, 'retries', -1)
    redis.call('HSET', key, 'leased', '1', 'expires', now + tonumber(ARGV[5]), 'state', ARGV[6])
    place(id)
    -- Others must learn the new lease's end, to wake when it lapses if this manager dies.
    announce('changed')
    return { id, q, redis.call('HGET', key, 'body'), retries, ARGV[6] }
  end
end
`,
);
