import { afterEach, describe, expect, it, vi } from 'vitest';
import type { PopenExecutorConfig } from '../../src/config/config-types.js';
import { InfraError } from '../../src/errors/buildman-error.js';
import type { BuildExecutor, StartRequest, StopRequest, WorkerInfo } from '../../src/executors/build-executor.js';
import { OrphanSweep, type OrphanSweepOptions } from '../../src/executors/orphan-sweep.js';

const NOW = 1_000_000;
const GRACE = 60_000;

/** An in-memory control plane: workers are whatever the test put there. */
class FakeExecutor implements BuildExecutor {
  readonly kind = 'popen' as const;
  readonly config: PopenExecutorConfig;
  workers: WorkerInfo[] = [];
  stopped: string[] = [];
  failList = false;
  failStopOf = new Set<string>();

  constructor(readonly name: string) {
    this.config = { EXECUTOR: 'popen', NAME: name } as PopenExecutorConfig;
  }
  add(buildId: string, attempt: number, ageMs: number, running = true): this {
    this.workers.push({ buildId, attempt, executionId: `${buildId}-${attempt}`, createdAt: NOW - ageMs, running });
    return this;
  }
  async start(_req: StartRequest): Promise<string> {
    throw new Error('not used');
  }
  async stop(req: StopRequest): Promise<void> {
    if (this.failStopOf.has(req.executionId!)) throw new InfraError(`${this.name}: stop failed`, 'EXECUTOR_UNREACHABLE');
    this.stopped.push(req.executionId!);
    this.workers = this.workers.filter((w) => w.executionId !== req.executionId);
  }
  async runningCount(): Promise<number> {
    return this.workers.filter((w) => w.running).length;
  }
  async listWorkers(): Promise<WorkerInfo[]> {
    if (this.failList) throw new InfraError(`${this.name}: connect ECONNREFUSED`, 'EXECUTOR_UNREACHABLE');
    return [...this.workers];
  }
  async close(): Promise<void> {}
}

function silentLogger() {
  const lines: Array<{ level: string; obj: object; msg?: string }> = [];
  const at = (level: string) => (obj: object, msg?: string) => void lines.push({ level, obj, msg });
  return { lines, log: { info: at('info'), warn: at('warn'), error: at('error') } };
}

function sweep(executors: FakeExecutor[], live: Set<string>, over: Partial<OrphanSweepOptions> = {}) {
  const logger = silentLogger();
  const removed: Array<[string, number]> = [];
  const s = new OrphanSweep({
    executors: new Map(executors.map((e) => [e.name, e])),
    isLive: async (buildId, attempt) => live.has(`${buildId}-${attempt}`),
    graceMs: GRACE,
    intervalMs: 30_000,
    logger: logger.log,
    onRemoved: (name, count) => void removed.push([name, count]),
    now: () => NOW,
    ...over,
  });
  return { s, removed, logger };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('OrphanSweep.sweepOnce', () => {
  it('stops old workers whose attempt is not live, keeps live ones and young ones', async () => {
    const ex = new FakeExecutor('k8s')
      .add('live', 1, 10 * GRACE)
      .add('dead', 1, 10 * GRACE)
      .add('dead-finished', 1, 2 * GRACE, false)
      .add('young', 1, GRACE / 2)
      .add('live', 0, 10 * GRACE); // an older attempt of a live build is an orphan too
    const { s, removed } = sweep([ex], new Set(['live-1']));
    const result = await s.sweepOnce();
    expect(ex.stopped.sort()).toEqual(['dead-1', 'dead-finished-1', 'live-0']);
    expect(ex.workers.map((w) => w.executionId).sort()).toEqual(['live-1', 'young-1']);
    expect(result).toEqual({ removed: 3, removedBy: { k8s: 3 }, failed: {} });
    expect(removed).toEqual([['k8s', 3]]);
  });

  it('one executor failing to list does not stop the sweep of the others', async () => {
    const broken = new FakeExecutor('ec2').add('a', 1, 10 * GRACE);
    broken.failList = true;
    const ok = new FakeExecutor('local').add('b', 1, 10 * GRACE);
    const { s, removed, logger } = sweep([broken, ok], new Set());
    const result = await s.sweepOnce();
    expect(ok.stopped).toEqual(['b-1']);
    expect(result.removedBy).toEqual({ ec2: 0, local: 1 });
    expect(result.failed.ec2).toMatchObject({ kind: 'retryable', code: 'EXECUTOR_UNREACHABLE' });
    expect(removed).toEqual([['local', 1]]);
    expect(logger.lines.some((l) => l.level === 'warn' && (l.obj as { executor?: string }).executor === 'ec2')).toBe(true);
  });

  it('a failed stop is reported and the remaining workers are still swept', async () => {
    const ex = new FakeExecutor('k8s').add('a', 1, 10 * GRACE).add('b', 1, 10 * GRACE);
    ex.failStopOf.add('a-1');
    const { s } = sweep([ex], new Set());
    const result = await s.sweepOnce();
    expect(ex.stopped).toEqual(['b-1']);
    expect(result.removed).toBe(1);
    expect(result.failed.k8s?.message).toContain('stop failed');
  });

  it('keeps a worker when liveness cannot be read', async () => {
    const ex = new FakeExecutor('k8s').add('a', 1, 10 * GRACE).add('b', 1, 10 * GRACE);
    const { s } = sweep([ex], new Set(), {
      isLive: async (buildId) => {
        if (buildId === 'a') throw new Error('redis down');
        return false;
      },
    });
    const result = await s.sweepOnce();
    expect(ex.stopped).toEqual(['b-1']);
    expect(result.failed.k8s?.message).toBe('redis down');
  });

  it('nothing to do: no stops, no onRemoved', async () => {
    const ex = new FakeExecutor('k8s').add('live', 1, 10 * GRACE);
    const { s, removed } = sweep([ex], new Set(['live-1']));
    expect(await s.sweepOnce()).toEqual({ removed: 0, removedBy: { k8s: 0 }, failed: {} });
    expect(removed).toEqual([]);
  });

  it('a call during a sweep joins it instead of stopping workers twice', async () => {
    const ex = new FakeExecutor('k8s').add('a', 1, 10 * GRACE);
    const { s } = sweep([ex], new Set());
    const [r1, r2] = await Promise.all([s.sweepOnce(), s.sweepOnce()]);
    expect(r1).toBe(r2);
    expect(ex.stopped).toEqual(['a-1']);
  });
});

describe('OrphanSweep.start/close', () => {
  it('sweeps at once, then every interval, until closed', async () => {
    vi.useFakeTimers({ now: NOW });
    const ex = new FakeExecutor('k8s');
    const list = vi.spyOn(ex, 'listWorkers');
    const { s } = sweep([ex], new Set(), { now: undefined });
    s.start();
    s.start(); // idempotent
    await vi.advanceTimersByTimeAsync(0);
    expect(list).toHaveBeenCalledTimes(1);

    // A worker appears; it is swept once it is older than the grace period.
    ex.workers.push({ buildId: 'x', attempt: 1, executionId: 'x-1', createdAt: Date.now(), running: true });
    await vi.advanceTimersByTimeAsync(30_000);
    expect(list).toHaveBeenCalledTimes(2);
    expect(ex.stopped).toEqual([]);
    await vi.advanceTimersByTimeAsync(30_000);
    expect(ex.stopped).toEqual(['x-1']);

    await s.close();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(list).toHaveBeenCalledTimes(3);
  });
});
