import { LuaScript } from '../redis/lua-script.js';

/**
 * The Redis orchestrator's writes, each one Lua script so it is atomic (Quay issues the same steps
 * as separate commands, §3.3). Every script takes the keys of `RedisKeyLayout.scriptKeys`:
 * KEYS[1] main, KEYS[2] `/expiring`, KEYS[3] `/expired`, KEYS[4] the expiries sorted set. Events
 * are published from inside the script, so the channel carries them in the order of the writes.
 */

/**
 * Helpers every script starts with. `publish` writes Quay's event JSON byte for byte as Python's
 * `json.dumps` does (`{"event": 1, "key": ..., "value": ...}`), except that non-ASCII text is sent
 * as UTF-8 rather than `\u` escapes. `now_ms` is the server's clock, the one clock all instances share.
 */
const HELPERS = String.raw`
local escapes = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
local function json_string(s)
  return '"' .. string.gsub(s, '[%z\1-\31\127"\\]', function(c)
    return escapes[c] or string.format('\\u%04x', string.byte(c))
  end) .. '"'
end
local function publish(channel, event, key, value)
  redis.call('PUBLISH', channel, '{"event": ' .. event .. ', "key": ' .. json_string(key) .. ', "value": ' .. json_string(value) .. '}')
end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/**
 * ARGV: value, overwrite ('1'/'0'), expiration ms ('' for none), main-key grace ms, channel.
 * Returns 'created', 'set', 'exists' (refused: no overwrite) or 'missing' (overwrite of nothing:
 * Quay's XX, nothing written and no event).
 */
export const setKeyScript = new LuaScript(
  'setKey',
  HELPERS +
    String.raw`
local exists = redis.call('EXISTS', KEYS[1]) == 1
local overwrite = ARGV[2] == '1'
if exists and not overwrite then return 'exists' end
if not exists and overwrite then return 'missing' end
if ARGV[3] ~= '' then
  local ttl = tonumber(ARGV[3])
  redis.call('SET', KEYS[1], ARGV[1], 'PX', string.format('%d', ttl + tonumber(ARGV[4])))
  redis.call('SET', KEYS[2], '', 'PX', string.format('%d', ttl))
  redis.call('ZADD', KEYS[4], string.format('%d', now_ms() + ttl), KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[4], KEYS[1])
end
redis.call('DEL', KEYS[3])
if exists then
  publish(ARGV[5], 2, KEYS[1], ARGV[1])
  return 'set'
end
publish(ARGV[5], 1, KEYS[1], ARGV[1])
return 'created'
`,
  4,
);

/** ARGV: channel. Returns the deleted value, or nil when the key was missing. */
export const deleteKeyScript = new LuaScript(
  'deleteKey',
  HELPERS +
    String.raw`
local value = redis.call('GET', KEYS[1])
if not value then return false end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('ZREM', KEYS[4], KEYS[1])
publish(ARGV[1], 3, KEYS[1], value)
return value
`,
  4,
);

/**
 * Expires one key whose `/expiring` sibling is gone, for the keyspace handler and the sweep alike.
 * ARGV: `/expired` marker TTL ms, channel. Returns the value to whichever caller expired the key,
 * nil to everyone else: a key with no pending expiry (deleted, overwritten without expiration, or
 * already expired by another caller) or one armed again (its `/expiring` exists).
 */
export const expireKeyScript = new LuaScript(
  'expireKey',
  HELPERS +
    String.raw`
if not redis.call('ZSCORE', KEYS[4], KEYS[1]) then return false end
if redis.call('EXISTS', KEYS[2]) == 1 then return false end
redis.call('ZREM', KEYS[4], KEYS[1])
local value = redis.call('GET', KEYS[1])
if not value then return false end
redis.call('SET', KEYS[3], value, 'PX', ARGV[1])
redis.call('DEL', KEYS[1])
publish(ARGV[2], 4, KEYS[1], value)
return value
`,
  4,
);

/** KEYS[1]: the expiries set. ARGV: limit. Keys whose deadline has passed, by the server's clock. */
export const dueKeysScript = new LuaScript(
  'dueKeys',
  HELPERS +
    String.raw`
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now_ms()), 'LIMIT', 0, tonumber(ARGV[1]))
`,
  1,
);
