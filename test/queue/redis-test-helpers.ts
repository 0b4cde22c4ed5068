import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from '../helpers/free-port.js';
export { freePort };
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { RedisOrchestratorConfig } from '../../src/redis/redis-connection.js';

/** The shared test Redis (127.0.0.1:6379 unless REDIS_PORT says otherwise). */
export const TEST_REDIS_PORT = Number(process.env.REDIS_PORT ?? 6379);

export function redisConfig(port = TEST_REDIS_PORT): RedisOrchestratorConfig {
  return {
    kind: 'redis',
    REDIS_HOST: '127.0.0.1',
    REDIS_PORT: port,
    REDIS_DB: 0,
    REDIS_SSL: false,
    REDIS_SKIP_KEYSPACE_EVENT_SETUP: true,
  };
}

/** Deletes every key under a test's prefix. */
export async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
}


/** A private, throwaway redis-server child, for tests that stop and restart Redis. */
export class RedisServerProcess {
  private child?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'buildman-redis-'));

  constructor(readonly port: number) {}

  async start(): Promise<void> {
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', this.dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    let output = '';
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}: ${output}`)));
    });
    await ready;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGKILL');
    await exited;
  }

  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}
