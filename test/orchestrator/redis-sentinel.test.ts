import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/load-config.js';
import { ConfigError } from '../../src/errors/buildman-error.js';
import { KeyEvent } from '../../src/orchestrator/orchestrator.js';
import { RedisOrchestrator } from '../../src/orchestrator/redis-orchestrator.js';
import { redisOptions } from '../../src/redis/redis-connection.js';
import { silentLogger } from '../../src/util/logger.js';
import { freePort, redisTestConfig, RedisServerChild, waitForRedis } from '../helpers/redis.js';
import { recordChanges, until } from './orchestrator-contract.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

function configWith(orchestrator: string): string {
  return `
FEATURE_BUILD_SUPPORT: true
BUILD_MANAGER:
- ephemeral
- ALLOWED_WORKER_COUNT: 1
  ORCHESTRATOR_PREFIX: buildman/
  ORCHESTRATOR:
${orchestrator
  .trim()
  .split('\n')
  .map((line) => `    ${line}`)
  .join('\n')}
  EXECUTORS:
  - EXECUTOR: popen
`;
}

function issuesOf(yaml: string): readonly string[] {
  try {
    parseConfig(yaml, { source: 'test.yaml', env: {} });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.issues;
  }
  throw new Error('expected the config to be refused');
}

describe('Sentinel keys (ours): REDIS_SENTINELS, REDIS_SENTINEL_MASTER, REDIS_SENTINEL_PASSWORD', () => {
  it('are read from ORCHESTRATOR and map to ioredis sentinel options', () => {
    const config = parseConfig(
      configWith(`
REDIS_PASSWORD: master-secret
REDIS_DB: 2
REDIS_SENTINELS: ["sentinel-1:26379", "10.0.0.2:26380", "[fd00::3]:26379"]
REDIS_SENTINEL_MASTER: buildman-master
REDIS_SENTINEL_PASSWORD: sentinel-secret`),
      { source: 'test.yaml', env: {} },
    );
    const orchestrator = config.manager.ORCHESTRATOR;
    expect(orchestrator).toMatchObject({
      kind: 'redis',
      REDIS_SENTINELS: ['sentinel-1:26379', '10.0.0.2:26380', '[fd00::3]:26379'],
      REDIS_SENTINEL_MASTER: 'buildman-master',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
    });
    if (orchestrator?.kind !== 'redis') throw new Error('expected redis');
    const opts = redisOptions(orchestrator);
    expect(opts).toMatchObject({
      sentinels: [
        { host: 'sentinel-1', port: 26379 },
        { host: '10.0.0.2', port: 26380 },
        { host: 'fd00::3', port: 26379 },
      ],
      name: 'buildman-master',
      sentinelPassword: 'sentinel-secret',
      password: 'master-secret',
      db: 2,
      failoverDetector: true,
    });
    expect(opts.host).toBeUndefined();
    expect(opts.port).toBeUndefined();
  });

  it('without them, REDIS_HOST and REDIS_PORT are used and no sentinel option is set', () => {
    const opts = redisOptions(redisTestConfig({ REDIS_HOST: 'redis.internal', REDIS_PORT: 6380 }));
    expect(opts).toMatchObject({ host: 'redis.internal', port: 6380 });
    expect(opts.sentinels).toBeUndefined();
    expect(opts.name).toBeUndefined();
  });

  it('mistakes are reported at the key that has them', () => {
    const at = 'BUILD_MANAGER[1].ORCHESTRATOR';
    expect(issuesOf(configWith(`REDIS_HOST: x\nREDIS_SENTINELS: ["sentinel-1"]\nREDIS_SENTINEL_MASTER: m`))).toEqual([
      `${at}.REDIS_SENTINELS[0]: expected host:port of a sentinel, e.g. sentinel-1:26379, got "sentinel-1"`,
    ]);
    expect(issuesOf(configWith(`REDIS_HOST: x\nREDIS_SENTINELS: ["s:99999"]\nREDIS_SENTINEL_MASTER: m`))).toEqual([
      `${at}.REDIS_SENTINELS[0]: expected host:port of a sentinel, e.g. sentinel-1:26379, got "s:99999"`,
    ]);
    expect(issuesOf(configWith(`REDIS_HOST: x\nREDIS_SENTINELS: sentinel-1:26379\nREDIS_SENTINEL_MASTER: m`))).toEqual([
      `${at}.REDIS_SENTINELS: expected a list of host:port of a sentinel, e.g. sentinel-1:26379, got "sentinel-1:26379"`,
    ]);
    expect(issuesOf(configWith(`REDIS_HOST: x\nREDIS_SENTINELS: []\nREDIS_SENTINEL_MASTER: m`))).toEqual([
      `${at}.REDIS_SENTINELS: expected at least one host:port of a sentinel, e.g. sentinel-1:26379, got a list of 0 items`,
    ]);
    expect(issuesOf(configWith(`REDIS_HOST: x\nREDIS_SENTINELS: ["s:26379"]`))).toEqual([
      `${at}.REDIS_SENTINEL_MASTER: required with REDIS_SENTINELS: the master name the sentinels monitor (their \`sentinel monitor <name> ...\` line)`,
    ]);
    expect(issuesOf(configWith(`REDIS_HOST: x\nREDIS_SENTINEL_MASTER: m\nREDIS_SENTINEL_PASSWORD: p`))).toEqual([
      `${at}.REDIS_SENTINEL_MASTER: only used with REDIS_SENTINELS: add the list of sentinels (host:port), or remove this key`,
      `${at}.REDIS_SENTINEL_PASSWORD: only used with REDIS_SENTINELS: add the list of sentinels (host:port), or remove this key`,
    ]);
  });

  it('REDIS_SENTINEL_PASSWORD is treated as a secret', () => {
    const config = parseConfig(
      configWith(`REDIS_SENTINELS: ["s:26379"]\nREDIS_SENTINEL_MASTER: m\nREDIS_SENTINEL_PASSWORD: sentinel-secret-value`),
      { source: 'test.yaml', env: {} },
    );
    expect(config.secrets).toContain('sentinel-secret-value');
  });
});

/** A `redis-server --sentinel` child watching one master with quorum 1 and fast failure detection. */
class SentinelChild {
  private child?: ChildProcess;
  private readonly dir = mkdtempSync(join(tmpdir(), 'buildman-sentinel-'));

  constructor(readonly port: number) {}

  async start(masterName: string, masterPort: number): Promise<void> {
    const conf = join(this.dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${this.port}`,
        'bind 127.0.0.1',
        `dir ${this.dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${masterPort} 1`,
        `sentinel down-after-milliseconds ${masterName} 1000`,
        `sentinel failover-timeout ${masterName} 5000`,
        '',
      ].join('\n'),
    );
    this.child = spawn('redis-server', [conf, '--sentinel'], { stdio: 'ignore' });
    await waitForRedis(this.port);
  }

  client(): Redis {
    const c = new Redis({ host: '127.0.0.1', port: this.port, protocol: 2, maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    return c;
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.kill('SIGKILL');
      });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}

describe('RedisOrchestrator through Redis Sentinel', () => {
  const cleanups: Array<() => Promise<void>> = [];

  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  it('survives a failover: writes resume on the new master with the replicated data, events and expiry included', async () => {
    const master = await RedisServerChild.start();
    cleanups.push(() => master.stop());
    const replica = await RedisServerChild.start(['--replicaof', '127.0.0.1', String(master.port)]);
    cleanups.push(() => replica.stop());
    const sentinel = new SentinelChild(await freePort());
    cleanups.push(() => sentinel.stop());
    await sentinel.start('buildman-test', master.port);

    // Failover needs the sentinel to know the replica, and the replica to be in sync.
    const probe = sentinel.client();
    cleanups.push(async () => probe.disconnect());
    const replicaClient = replica.client();
    cleanups.push(async () => replicaClient.disconnect());
    for (const deadline = Date.now() + 15_000; ; ) {
      const replicas = (await probe.call('SENTINEL', 'REPLICAS', 'buildman-test')) as string[][];
      const info = await replicaClient.info('replication');
      if (replicas.length === 1 && info.includes('master_link_status:up')) break;
      if (Date.now() > deadline) throw new Error('the sentinel never saw an in-sync replica');
      await sleep(100);
    }

    const config = redisTestConfig({ REDIS_SENTINELS: [`127.0.0.1:${sentinel.port}`], REDIS_SENTINEL_MASTER: 'buildman-test' });
    const orch = new RedisOrchestrator(config, { prefix: 'buildman/', logger: silentLogger(), sweepIntervalMs: 60_000 });
    cleanups.push(() => orch.close());
    await orch.ready();
    const { changes } = recordChanges(orch, 'buildman/');
    await orch.setKey('buildman/building/before', 'written before the failover');
    await until(() => changes.length === 1, 10_000, 'CREATE before the failover');
    await replicaClient.call('WAIT', '1', '2000').catch(() => undefined);
    await master.stop();

    // Writes fail (retryably) until the sentinel promotes the replica, then work again.
    let n = 0;
    for (const deadline = Date.now() + 40_000; ; ) {
      try {
        await orch.setKey(`buildman/probe/${n++}`, 'p');
        break;
      } catch (err) {
        expect(err).toMatchObject({ code: 'REDIS_UNAVAILABLE', retryable: true });
        if (Date.now() > deadline) throw new Error('no failover within 40 s');
        await sleep(200);
      }
    }
    expect(await replicaClient.call('ROLE').then((r) => (r as unknown[])[0])).toBe('master');
    expect(await orch.getKey('buildman/building/before')).toBe('written before the failover');

    // Subscriptions followed the master: our writes are heard, and keyspace expiry works there
    // (the notification setting was applied to the new master; the sweep is off).
    // Pub/sub is fire-and-forget: a write published before our subscriber reached the new master is
    // not heard, so keep writing until one is (the subscription must follow the master).
    for (const deadline = Date.now() + 30_000; !changes.some((c) => c.key.startsWith('buildman/probe/')); ) {
      if (Date.now() > deadline) throw new Error('no CREATE heard after the failover within 30 s');
      await orch.setKey(`buildman/probe/${n++}`, 'p').catch(() => undefined);
      await sleep(250);
    }
    await orch.setKey('buildman/building/after', 'v', { expirationSeconds: 1 });
    await until(() => changes.some((c) => c.event === KeyEvent.EXPIRE), 15_000, 'EXPIRE after the failover');
    expect(changes.filter((c) => c.event === KeyEvent.EXPIRE)).toEqual([
      { event: KeyEvent.EXPIRE, key: 'buildman/building/after', value: 'v' },
    ]);
  }, 120_000);
});
