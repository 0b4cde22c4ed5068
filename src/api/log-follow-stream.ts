import { PassThrough } from 'node:stream';
import type { BuildService } from './build-service.js';

/**
 * A build's log as NDJSON: one `{"index","entry"}` line per entry from `start` (the existing ones,
 * then each new one), and a last `{"end":true,"build"}` line once the build is final. Throws
 * before anything is written when the build does not exist, so the caller can still answer 404.
 */
export async function openLogFollowStream(
  service: BuildService,
  id: string,
  start: number,
): Promise<{ stream: PassThrough; stop: () => void }> {
  const stream = new PassThrough();
  let ended = false;
  const stopFollowing = await service.followLogs(
    id,
    start,
    (entry, index) => {
      if (!ended) stream.write(JSON.stringify({ index, entry }) + '\n');
    },
    (build) => {
      if (ended) return;
      ended = true;
      stream.end(JSON.stringify({ end: true, build }) + '\n');
    },
  );
  let stopped = false;
  const stop = () => {
    if (stopped) return;
    stopped = true;
    stopFollowing();
    if (!ended) {
      ended = true;
      stream.end();
    }
  };
  return { stream, stop };
}
