/**
 * Lua shared by every queue script (BullMQ keeps such fragments in `includes/`). It names the keys,
 * reads the clock, and keeps the indexes in step with an item's fields.
 *
 * KEYS: seq, ready, heads, running, delayed, busy (see queue-keys.ts).
 * ARGV[1] base of per-item and per-repository keys, ARGV[2] the caller's clock in ms or '' for Redis
 * TIME, ARGV[3] event channel, ARGV[4] event tag (sender and queue name), ARGV[5..] the script's own.
 */
export const PRELUDE = `
local seqKey, readyKey, headsKey, runningKey, delayedKey, busyKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local base = ARGV[1]

-- One clock for every manager: Redis's own, so leases and delays compare the same way whichever
-- host claimed or checks them (hosts' clocks drift). Tests inject theirs to jump ahead.
local now = tonumber(ARGV[2])
if not now then
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function itemKey(id) return base .. 'item/' .. id end
local function repoReadyKey(q) return base .. 'ready/' .. q end

-- 'available': listeners should try a claim; 'changed': only the next wake-up moment may have moved.
local function announce(kind) redis.call('PUBLISH', ARGV[3], kind .. '|' .. ARGV[4]) end

-- A repository is in heads, scored by its oldest ready item, exactly when it has a ready item and
-- nothing running.
local function refreshHead(q)
  local first = redis.call('ZRANGE', repoReadyKey(q), 0, 0, 'WITHSCORES')
  if first[1] and redis.call('HEXISTS', busyKey, q) == 0 then
    redis.call('ZADD', headsKey, first[2], q)
  else
    redis.call('ZREM', headsKey, q)
  end
end

local function unplace(id, q, at)
  if at == 'run' then
    redis.call('ZREM', runningKey, id)
    if redis.call('HINCRBY', busyKey, q, -1) <= 0 then redis.call('HDEL', busyKey, q) end
  elseif at == 'ready' then
    redis.call('ZREM', readyKey, id)
    redis.call('ZREM', repoReadyKey(q), id)
  elseif at == 'wait' then
    redis.call('ZREM', delayedKey, id)
  end
end

-- Files an item under the one index its fields say it belongs to at this moment (Quay's rules:
-- running = leased and lease not lapsed; available = not running, retries left, delay over).
local function place(id)
  local key = itemKey(id)
  local f = redis.call('HMGET', key, 'queue', 'retries', 'after', 'leased', 'expires', 'seq', 'at')
  local q = f[1]
  if not q then
    -- The hash is gone (evicted): forget the id rather than fail every later claim.
    redis.call('ZREM', runningKey, id)
    redis.call('ZREM', delayedKey, id)
    redis.call('ZREM', readyKey, id)
    return
  end
  unplace(id, q, f[7])
  local retries, after, expires = tonumber(f[2]), tonumber(f[3]), tonumber(f[5])
  local at = 'none'
  if f[4] == '1' and expires > now then
    at = 'run'
    redis.call('ZADD', runningKey, expires, id)
    redis.call('HINCRBY', busyKey, q, 1)
  elseif retries <= 0 then
    at = 'none'
  elseif after > now then
    at = 'wait'
    redis.call('ZADD', delayedKey, after, id)
  else
    at = 'ready'
    redis.call('ZADD', readyKey, f[6], id)
    redis.call('ZADD', repoReadyKey(q), f[6], id)
  end
  redis.call('HSET', key, 'at', at)
  refreshHead(q)
end

-- Re-files the items whose moment has come (a lease lapsed, a delay ended). Each item passes here at
-- most once per state change, so this costs O(log n) per item, amortised.
local function promote()
  for _, key in ipairs({ runningKey, delayedKey }) do
    for _, id in ipairs(redis.call('ZRANGEBYSCORE', key, '-inf', now)) do place(id) end
  end
end
`;
