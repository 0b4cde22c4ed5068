import { createPublicKey, type KeyObject } from 'node:crypto';
import type { Redis } from 'ioredis';
import { slashJoin } from '../orchestrator/orchestrator.js';
import { redisUnavailable } from '../redis/redis-connection.js';

/**
 * The public halves of every instance's service key, in Redis (`<P>service_keys`, kid → PEM), so a
 * token one manager minted verifies on any other — Quay keeps these in its database.
 */
export class SharedServiceKeys {
  private readonly key: string;
  private readonly cache = new Map<string, KeyObject>();

  constructor(
    private readonly redis: Redis,
    prefix: string,
  ) {
    this.key = slashJoin(prefix, 'service_keys');
  }

  /** Publishes this instance's public key under its kid. */
  async publish(kid: string, privateKey: KeyObject): Promise<void> {
    const pem = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }) as string;
    try {
      await this.redis.hset(this.key, kid, pem);
    } catch (err) {
      throw redisUnavailable(err);
    }
    this.cache.set(kid, createPublicKey(pem));
  }

  /** The public key for a kid, or undefined when no instance published it. */
  async lookup(kid: string): Promise<KeyObject | undefined> {
    const cached = this.cache.get(kid);
    if (cached) return cached;
    let pem: string | null;
    try {
      pem = await this.redis.hget(this.key, kid);
    } catch (err) {
      throw redisUnavailable(err);
    }
    if (!pem) return undefined;
    const key = createPublicKey(pem);
    this.cache.set(kid, key);
    return key;
  }
}
