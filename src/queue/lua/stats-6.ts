import { queueScript } from './queue-script.js';

/** Counts {available, running, delayed} after re-filing due items. O(log n) plus those. */
export const stats6 = queueScript(
  'stats-6',
  `
promote()
return { redis.call('ZCARD', readyKey), redis.call('ZCARD', runningKey), redis.call('ZCARD', delayedKey) }
`,
);
