import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { InfraError } from '../../src/errors/buildman-error.js';
import { KeyEvent, type KeyChange } from '../../src/orchestrator/orchestrator.js';
import { RedisOrchestrator, type RedisOrchestratorOptions } from '../../src/orchestrator/redis-orchestrator.js';
import type { RedisOrchestratorConfig } from '../../src/redis/redis-connection.js';
import type { Logger } from '../../src/util/logger.js';
import { silentLogger } from '../../src/util/logger.js';
import { RedisServerChild, uniquePrefix } from '../helpers/redis.js';
import { captureLogger } from './log-capture.js';
import { recordChanges, until } from './orchestrator-contract.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Each test runs its own redis-server, because it reconfigures, breaks or restarts it. */
describe('RedisOrchestrator against a server that misbehaves', () => {
  const servers: RedisServerChild[] = [];
  const orchestrators: RedisOrchestrator[] = [];
  const clients: Redis[] = [];

  async function server(args: string[] = []): Promise<RedisServerChild> {
    const s = await RedisServerChild.start(args);
    servers.push(s);
    return s;
  }

  function orchestrator(
    config: RedisOrchestratorConfig,
    opts: Partial<RedisOrchestratorOptions> & { logger?: Logger } = {},
  ): RedisOrchestrator {
    const orch = new RedisOrchestrator(config, { prefix: uniquePrefix(), logger: silentLogger(), ...opts });
    orchestrators.push(orch);
    return orch;
  }

  function client(s: RedisServerChild): Redis {
    const c = s.client();
    clients.push(c);
    return c;
  }

  async function notifyFlags(s: RedisServerChild): Promise<string> {
    const [, flags] = (await client(s).config('GET', 'notify-keyspace-events')) as [string, string];
    return flags;
  }

  /** Rejects with what `operation` threw, and how long it took. */
  async function failure(operation: () => Promise<unknown>): Promise<{ err: unknown; ms: number }> {
    const started = Date.now();
    try {
      await operation();
    } catch (err) {
      return { err, ms: Date.now() - started };
    }
    throw new Error('expected the operation to fail');
  }

  /** Runs `probe` until it returns something truthy (errors count as not yet). */
  async function eventually<T>(probe: () => Promise<T>, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        const result = await probe();
        if (result) return result;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
      await sleep(50);
    }
  }

  afterEach(async () => {
    await Promise.all(orchestrators.splice(0).map((o) => o.close()));
    for (const c of clients.splice(0)) c.disconnect();
    for (const s of servers.splice(0)) {
      s.resume();
      await s.stop();
    }
  });

  it('merges keyspace flags with the server setting instead of replacing it', async () => {
    const s = await server(['--notify-keyspace-events', 'Eg']);
    const orch = orchestrator(s.config());
    await orch.ready();
    const flags = await eventually(async () => {
      const f = await notifyFlags(s);
      return f.includes('K') ? f : '';
    }, 3000, 'keyspace flags');
    expect([...flags].sort()).toEqual(['E', 'K', 'g', 'x']);
  });

  it('with REDIS_SKIP_KEYSPACE_EVENT_SETUP and notifications off on the server, the sweep still expires keys', async () => {
    const s = await server(['--notify-keyspace-events', '']);
    const orch = orchestrator(s.config({ REDIS_SKIP_KEYSPACE_EVENT_SETUP: true }), { prefix: 'buildman/', sweepIntervalMs: 200 });
    await orch.ready();
    const { changes } = recordChanges(orch, 'buildman/building/');
    const started = Date.now();
    await orch.setKey('buildman/building/job', 'value', { expirationSeconds: 1 });
    await until(() => changes.length >= 2, 3000, 'EXPIRE');
    expect(Date.now() - started).toBeGreaterThanOrEqual(950);
    expect(changes.slice(1)).toEqual([{ event: KeyEvent.EXPIRE, key: 'buildman/building/job', value: 'value' }]);
    expect(await notifyFlags(s)).toBe('');
  });

  it('a server that forbids CONFIG gets a warning, and expiry still works through the sweep', async () => {
    const s = await server(['--rename-command', 'CONFIG', '']);
    const { logger, lines } = captureLogger('warn');
    const orch = orchestrator(s.config(), { prefix: 'buildman/', sweepIntervalMs: 200, logger });
    await orch.ready();
    const { changes } = recordChanges(orch, 'buildman/');
    await orch.setKey('buildman/building/job', 'value', { expirationSeconds: 1 });
    await until(() => changes.length >= 2, 3000, 'EXPIRE');
    expect(changes.slice(1)).toEqual([{ event: KeyEvent.EXPIRE, key: 'buildman/building/job', value: 'value' }]);
    const warning = lines().find((l) => String(l.msg).includes('REDIS_SKIP_KEYSPACE_EVENT_SETUP'));
    expect(warning).toMatchObject({ level: 40 });
    expect(String(warning?.msg)).toContain('Redis refused CONFIG');
  });

  it('a killed pub/sub connection is re-subscribed: events and notification-driven expiry keep coming', async () => {
    const s = await server();
    const config = s.config();
    // The sweep is off (1 min), so an EXPIRE can only come from the restored keyspace subscription.
    const watcher = orchestrator(config, { prefix: 'buildman/', sweepIntervalMs: 60_000 });
    const writer = orchestrator(config, { prefix: 'buildman/', sweepIntervalMs: 60_000 });
    await Promise.all([watcher.ready(), writer.ready()]);
    const { changes } = recordChanges(watcher, 'buildman/');
    // Either instance may win an expiry; exactly one does.
    const writerChanges = recordChanges(writer, 'buildman/').changes;
    const expires = () => [...changes, ...writerChanges].filter((c) => c.event === KeyEvent.EXPIRE);

    const killed = await client(s).call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    expect(Number(killed)).toBeGreaterThanOrEqual(2);
    // Until the subscriptions are back, writes may go unheard; keep writing until one is heard.
    let n = 0;
    await eventually(async () => {
      await writer.setKey(`buildman/probe/${n++}`, 'p');
      await sleep(100);
      return changes.some((c) => c.event === KeyEvent.CREATE);
    }, 8000, 'an event after the kill');
    expect(changes.some((c) => c.event === KeyEvent.CREATE)).toBe(true);

    await writer.setKey('buildman/building/job', 'value', { expirationSeconds: 1 });
    await until(() => expires().length > 0, 3500, 'EXPIRE');
    await sleep(300);
    expect(expires()).toEqual([{ event: KeyEvent.EXPIRE, key: 'buildman/building/job', value: 'value' }]);
  });

  it('while Redis is down every operation rejects within seconds with a retryable InfraError; after a restart all works again', async () => {
    const s = await server();
    const watcher = orchestrator(s.config(), { prefix: 'buildman/', sweepIntervalMs: 60_000 });
    const writer = orchestrator(s.config(), { prefix: 'buildman/', sweepIntervalMs: 60_000 });
    await Promise.all([watcher.ready(), writer.ready()]);
    const { changes } = recordChanges(watcher, 'buildman/');
    const writerChanges = recordChanges(writer, 'buildman/').changes;
    const expires = () => [...changes, ...writerChanges].filter((c) => c.event === KeyEvent.EXPIRE);

    await s.stop();
    const operations: Array<() => Promise<unknown>> = [
      () => writer.getKey('buildman/building/a'),
      () => writer.setKey('buildman/building/a', 'v', { expirationSeconds: 5 }),
      () => writer.deleteKey('buildman/building/a'),
      () => writer.getPrefixedKeys('buildman/'),
      () => writer.lock('buildman/lock/a'),
    ];
    const failures = await Promise.all(operations.map(failure));
    for (const { err, ms } of failures) {
      expect(err).toBeInstanceOf(InfraError);
      expect(err).toMatchObject({ code: 'REDIS_UNAVAILABLE', retryable: true });
      expect((err as Error).message).toMatch(/^Redis is unavailable: /);
      expect(ms).toBeLessThan(5000);
    }

    // A new server on the same port knows nothing: no settings, no subscriptions.
    await s.start();
    expect(await notifyFlags(s)).toBe('');
    let n = 0;
    await eventually(async () => {
      await writer.setKey(`buildman/probe/${n++}`, 'p');
      await sleep(100);
      return changes.some((c) => c.event === KeyEvent.CREATE);
    }, 10_000, 'an event after the restart');

    // The keyspace setting was applied again and the keyspace subscription is back: EXPIRE arrives without the sweep.
    await eventually(async () => (await notifyFlags(s)).includes('K'), 5000, 'keyspace flags after the restart');
    await writer.setKey('buildman/building/job', 'value', { expirationSeconds: 1 });
    await until(() => expires().length > 0, 3500, 'EXPIRE after restart');
    await sleep(300);
    expect(expires()).toEqual([{ event: KeyEvent.EXPIRE, key: 'buildman/building/job', value: 'value' } satisfies KeyChange]);
  });

  it('a hung server (no answers) fails operations within a few seconds, and they work once it answers again', async () => {
    const s = await server();
    const orch = orchestrator(s.config(), { prefix: 'buildman/' });
    await orch.ready();
    await orch.setKey('buildman/building/a', 'v');

    s.pause();
    const { err, ms } = await failure(() => orch.getKey('buildman/building/a'));
    expect(err).toBeInstanceOf(InfraError);
    expect(err).toMatchObject({ code: 'REDIS_UNAVAILABLE', retryable: true });
    expect(ms).toBeLessThan(5000);

    s.resume();
    expect(await orch.getKey('buildman/building/a')).toBe('v');
  });
});
