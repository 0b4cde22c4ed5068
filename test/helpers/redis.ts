import { spawn, type ChildProcess } from 'node:child_process';
import { freePort } from './free-port.js';
export { freePort };
import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { RedisOrchestratorConfig } from '../../src/redis/redis-connection.js';

/**
 * Redis for tests: the shared server (127.0.0.1:6379, or REDIS_TEST_HOST / REDIS_TEST_PORT), one
 * unique key prefix per test, and private `redis-server` children for tests that restart, reconfigure
 * or break the server.
 */

export const REDIS_TEST_HOST = process.env.REDIS_TEST_HOST ?? '127.0.0.1';
export const REDIS_TEST_PORT = Number(process.env.REDIS_TEST_PORT ?? 6379);

/** ORCHESTRATOR keys for the shared test server. */
export function redisTestConfig(overrides: Partial<RedisOrchestratorConfig> = {}): RedisOrchestratorConfig {
  return {
    kind: 'redis',
    REDIS_HOST: REDIS_TEST_HOST,
    REDIS_PORT: REDIS_TEST_PORT,
    REDIS_DB: 0,
    REDIS_SSL: false,
    REDIS_SKIP_KEYSPACE_EVENT_SETUP: false,
    ...overrides,
  };
}

/** A fresh ORCHESTRATOR_PREFIX, `test/<random>/`, so tests sharing a server never see each other. */
export function uniquePrefix(): string {
  return `test/${randomBytes(6).toString('hex')}/`;
}

/** A plain client (protocol 2, no retries beyond a couple) for inspecting the server in a test. */
export function testClient(config: RedisOrchestratorConfig = redisTestConfig()): Redis {
  const client = new Redis({ host: config.REDIS_HOST, port: config.REDIS_PORT, db: config.REDIS_DB, protocol: 2, maxRetriesPerRequest: 2 });
  client.on('error', () => {});
  return client;
}

/**
 * Deletes every key under `prefix` (the prefix is a literal, not a pattern), and the build logs
 * of the builds recorded there: those live at Quay's unprefixed `builds/<uuid>/logs`.
 */
export async function cleanupPrefix(prefix: string, config: RedisOrchestratorConfig = redisTestConfig()): Promise<void> {
  const client = testClient(config);
  try {
    const pattern = prefix.replace(/[*?[\]\\]/g, (c) => '\\' + c) + '*';
    const records = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/?build/([^/]+)$`);
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
      cursor = next;
      const logs = keys.flatMap((k) => {
        const id = records.exec(k)?.[1];
        return id ? [`builds/${id}/logs`] : [];
      });
      if (keys.length) await client.del(...keys, ...logs);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}


const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls PING until the server answers or `timeoutMs` passes. */
export async function waitForRedis(port: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const client = new Redis({ host: '127.0.0.1', port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, protocol: 2 });
    client.on('error', () => {});
    try {
      await client.connect();
      if ((await client.ping()) === 'PONG') return;
    } catch {
      // not up yet
    } finally {
      client.disconnect();
    }
    if (Date.now() > deadline) throw new Error(`redis on port ${port} did not answer within ${timeoutMs} ms`);
    await sleep(50);
  }
}

/** A private `redis-server` child process (no persistence), stoppable and restartable on its port. */
export class RedisServerChild {
  private child?: ChildProcess;

  private constructor(
    readonly port: number,
    private readonly args: readonly string[],
  ) {}

  /** Starts `redis-server` on a free port with extra `args` (e.g. `['--notify-keyspace-events', '']`). */
  static async start(args: readonly string[] = []): Promise<RedisServerChild> {
    const server = new RedisServerChild(await freePort(), args);
    await server.start();
    return server;
  }

  config(overrides: Partial<RedisOrchestratorConfig> = {}): RedisOrchestratorConfig {
    return redisTestConfig({ REDIS_HOST: '127.0.0.1', REDIS_PORT: this.port, ...overrides });
  }

  client(): Redis {
    return testClient(this.config());
  }

  /** (Re)starts the server on the same port. */
  async start(): Promise<void> {
    if (this.child) return;
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', ...this.args],
      { stdio: 'ignore' },
    );
    this.child = child;
    child.on('exit', () => {
      if (this.child === child) this.child = undefined;
    });
    await waitForRedis(this.port);
  }

  /** Freezes the server (SIGSTOP): connections stay open but nothing answers, like a hung host. */
  pause(): void {
    this.child?.kill('SIGSTOP');
  }

  resume(): void {
    this.child?.kill('SIGCONT');
  }

  /** Kills the server (SIGKILL: a crash, not a clean shutdown) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.child = undefined;
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
}
