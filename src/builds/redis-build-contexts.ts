import { randomBytes } from 'node:crypto';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import { InfraError, RequestError } from '../errors/buildman-error.js';
import type { RedisBuildKeys } from './redis-build-keys.js';
import { repliesOrThrow, withDeadline } from './redis-store-io.js';

/** The config key that sets the upload cap, named in the 413 so the operator knows what to raise. */
const MAX_CONTEXT_KEY = 'BUILDMAN_MAX_CONTEXT_BYTES';
/**
 * Uploads are stored as a list of chunks of this size: big enough that a 100 MB context is ~100
 * round trips, small enough that no single command is large, and far under Redis's 512 MB string cap.
 */
const CHUNK_BYTES = 1024 * 1024;

/**
 * Uploaded context archives in Redis, so the instance a worker asks is not necessarily the one that
 * took the upload. An upload goes to its own key and is renamed into place when complete, so a
 * reader never sees half of one; both keys carry a TTL, so an abandoned upload cannot leak.
 */
export class RedisBuildContexts {
  constructor(
    private readonly redis: () => Redis,
    private readonly keys: RedisBuildKeys,
    private readonly opts: { ttlSeconds: number; timeoutMs: number },
  ) {}

  async save(id: string, data: Readable, maxBytes: number): Promise<number> {
    const redis = this.redis();
    const { ttlSeconds, timeoutMs } = this.opts;
    const upload = this.keys.contextUpload(id, randomBytes(4).toString('hex'));
    let bytes = 0;
    let held: Buffer[] = [];
    let heldBytes = 0;
    let chunks = 0;
    const push = async () => {
      const chunk = Buffer.concat(held, heldBytes);
      held = [];
      heldBytes = 0;
      chunks += 1;
      repliesOrThrow(await withDeadline(redis.multi().rpush(upload, chunk).expire(upload, ttlSeconds).exec(), timeoutMs));
    };
    const sink = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        if (bytes > maxBytes) {
          callback(new RequestError(`Build context is larger than the limit of ${maxBytes} bytes (${MAX_CONTEXT_KEY})`, 413, 'context'));
          return;
        }
        held.push(chunk);
        heldBytes += chunk.length;
        // Waiting for Redis before taking more is the backpressure on the client's upload.
        if (heldBytes >= CHUNK_BYTES) push().then(() => callback(), callback);
        else callback();
      },
      final(callback) {
        // An empty archive is still one (empty) chunk, so that it exists.
        if (heldBytes > 0 || chunks === 0) push().then(() => callback(), callback);
        else callback();
      },
    });
    try {
      await pipeline(data, sink);
      // RENAME keeps the upload key's TTL; EXPIRE restarts it from now.
      repliesOrThrow(await withDeadline(redis.multi().rename(upload, this.keys.context(id)).expire(this.keys.context(id), ttlSeconds).exec(), timeoutMs));
    } catch (err) {
      // Remove the partial upload before answering. If Redis itself failed, do not wait on it:
      // the upload key's TTL removes it.
      const removed = withDeadline(redis.del(upload), timeoutMs).catch(() => undefined);
      if (!(err instanceof InfraError)) await removed;
      throw err;
    }
    return bytes;
  }

  async open(id: string): Promise<Readable | undefined> {
    const redis = this.redis();
    const key = this.keys.context(id);
    const { timeoutMs } = this.opts;
    const count = await withDeadline(redis.llen(key), timeoutMs);
    if (count === 0) return undefined;
    // Chunk by chunk, so a large context is never held in memory whole.
    async function* chunks(): AsyncGenerator<Buffer> {
      for (let i = 0; i < count; i++) {
        const chunk = await withDeadline(redis.lindexBuffer(key, i), timeoutMs);
        if (!chunk) throw new Error(`build context ${id} was deleted or replaced while being read`);
        if (chunk.length > 0) yield chunk;
      }
    }
    return Readable.from(chunks(), { objectMode: false });
  }

  async delete(id: string): Promise<void> {
    await withDeadline(this.redis().del(this.keys.context(id)), this.opts.timeoutMs);
  }
}
