import net from 'node:net';
import type { Redis } from 'ioredis';
import type { RedisOrchestratorConfig } from '../../src/redis/redis-connection.js';
import { redisTestConfig } from '../helpers/redis.js';

/**
 * What the build-store tests need beyond test/helpers/redis.ts: key listings, and Redis servers that
 * are down, hung, or cut off mid-test.
 */

/** ORCHESTRATOR keys for a local stand-in on `port` (closed, hung, or a proxy to the test Redis). */
export function localRedisConfig(port: number): RedisOrchestratorConfig {
  return redisTestConfig({ REDIS_HOST: '127.0.0.1', REDIS_PORT: port });
}

/** Every key matching `pattern`. */
export async function keysMatching(redis: Redis, pattern: string): Promise<string[]> {
  const out: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    out.push(...keys);
  } while (cursor !== '0');
  return out.sort();
}

export async function deleteMatching(redis: Redis, ...patterns: string[]): Promise<void> {
  for (const pattern of patterns) {
    const keys = await keysMatching(redis, pattern);
    if (keys.length) await redis.del(...keys);
  }
}

/** A TCP port nothing listens on. */
export async function closedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A server that accepts connections and never answers: a hung Redis. */
export async function blackhole(): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/**
 * A TCP proxy in front of the test Redis that can cut every connection and refuse new ones,
 * then let them through again: an outage without touching the shared Redis.
 */
export async function redisProxy(target = redisTestConfig()): Promise<{ port: number; cut: () => void; restore: () => void; close: () => Promise<void> }> {
  let up = true;
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer((client) => {
    client.on('error', () => undefined);
    if (!up) {
      client.destroy();
      return;
    }
    const upstream = net.connect(target.REDIS_PORT, target.REDIS_HOST);
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    const pair: [net.Socket, net.Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('close', drop);
    upstream.on('close', drop);
    client.pipe(upstream);
    upstream.pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const cutAll = () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b.destroy();
    }
    pairs.clear();
  };
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () => {
      up = false;
      cutAll();
    },
    restore: () => {
      up = true;
    },
    close: async () => {
      cutAll();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
