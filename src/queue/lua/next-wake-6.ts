import { queueScript } from './queue-script.js';

/**
 * Read-only: {now, the earliest future moment an item becomes claimable or frees its repository by
 * itself, or -1}. Both in the scripts' clock, so the caller's timer waits `next - now` whatever its
 * own clock says. Moments already past are skipped: listeners were told of them, and a claim re-files them.
 */
export const nextWake6 = queueScript(
  'next-wake-6',
  `
local next = -1
for _, key in ipairs({ runningKey, delayedKey }) do
  local first = redis.call('ZRANGEBYSCORE', key, '(' .. now, '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if first[2] then
    local at = tonumber(first[2])
    if next < 0 or at < next then next = at end
  end
end
return { now, next }
`,
);
