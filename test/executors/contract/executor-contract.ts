/**
 * The behaviour every BuildExecutor owes the manager, checked once for all of them.
 *
 * Use it from a `*.contract.test.ts` file next to this one:
 *
 * ```ts
 * executorContract('kubernetes', async () => {
 *   const emulator = await startEmulator();
 *   const executor = new KubernetesExecutor(config(emulator.url), ctx);
 *   return {
 *     executor,
 *     faults: { break: () => emulator.refuseAll(), heal: () => emulator.acceptAll() },
 *     cleanup: async () => { await executor.close(); await emulator.stop(); },
 *   };
 * });
 * ```
 *
 * `setup` runs before every test and must return a fresh executor with no workers.
 * - `executor` (required): the executor under test, on a real control plane or an emulator.
 * - `faults` (optional): `break()` makes the control plane fail (refuse, 5xx, unreachable: your
 *   choice); `heal()` undoes it. Without it the failure checks are skipped.
 * - `workerProcesses` (optional): how many worker processes are alive on this machine, for executors
 *   whose workers are local processes; checked to reach 0 after stop.
 * - `cleanup` (required): releases everything setup made. The suite stops the workers it started
 *   before calling it.
 *
 * Control planes that delete asynchronously get up to {@link SETTLE_MS} for a stopped worker to vanish
 * from `listWorkers`/`runningCount`.
 */
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { BuildmanError } from '../../../src/errors/buildman-error.js';
import type { BuildExecutor, StartRequest, WorkerInfo } from '../../../src/executors/build-executor.js';

export interface ContractFixture {
  executor: BuildExecutor;
  /** make the control plane fail */
  faults?: { break(): void | Promise<void>; heal(): void | Promise<void> };
  /** Live worker processes on this machine (local executors only). */
  workerProcesses?: () => number;
  cleanup(): Promise<void>;
}

/** How long a stopped worker may take to disappear from the control plane's listings. */
export const SETTLE_MS = 10_000;

const TOKEN = 'contract.registration.token';

export function executorContract(name: string, setup: () => Promise<ContractFixture>): void {
  describe(`executor contract: ${name}`, () => {
    let fx: ContractFixture;
    let started: StartRequest[];

    beforeEach(async () => {
      fx = await setup();
      started = [];
    });
    afterEach(async () => {
      await fx.faults?.heal();
      // Best effort: a failed test must not leave workers running on a shared control plane.
      await Promise.allSettled(started.map((r) => fx.executor.stop({ buildId: r.buildId, attempt: r.attempt })));
      await fx.cleanup();
    });

    const request = (attempt = 1, buildId: string = randomUUID()): StartRequest => {
      const req = { buildId, attempt, token: TOKEN };
      started.push(req);
      return req;
    };
    const workerOf = async (executionId: string): Promise<WorkerInfo | undefined> =>
      (await fx.executor.listWorkers()).find((w) => w.executionId === executionId);

    it('start returns an execution id and the worker exists', async () => {
      const req = request();
      const before = Date.now();
      const id = await fx.executor.start(req);
      expect(typeof id).toBe('string');
      expect(id.length).toBeGreaterThan(0);

      const worker = await workerOf(id);
      expect(worker).toMatchObject({ buildId: req.buildId, attempt: 1, executionId: id, running: true });
      // Control planes report creation with second precision, and clocks drift a little.
      expect(Math.abs(worker!.createdAt - before)).toBeLessThan(120_000);
      expect(await fx.executor.runningCount()).toBe(1);
      if (fx.workerProcesses) await eventually(() => expect(fx.workerProcesses!()).toBe(1));
    });

    it('start twice for the same build attempt gives the same id and one worker', async () => {
      const req = request();
      const first = await fx.executor.start(req);
      const again = await fx.executor.start(req);
      expect(again).toBe(first);
      expect((await fx.executor.listWorkers()).filter((w) => w.buildId === req.buildId)).toHaveLength(1);
      expect(await fx.executor.runningCount()).toBe(1);
    });

    it('concurrent starts of the same build attempt give the same id and one worker', async () => {
      const req = request();
      const ids = await Promise.all([fx.executor.start(req), fx.executor.start(req), fx.executor.start(req)]);
      expect(new Set(ids).size).toBe(1);
      expect((await fx.executor.listWorkers()).filter((w) => w.buildId === req.buildId)).toHaveLength(1);
      expect(await fx.executor.runningCount()).toBe(1);
    });

    it('another attempt of the same build is another worker', async () => {
      const first = request(1);
      const second = request(2, first.buildId);
      const [a, b] = [await fx.executor.start(first), await fx.executor.start(second)];
      expect(a).not.toBe(b);
      const attempts = (await fx.executor.listWorkers()).filter((w) => w.buildId === first.buildId).map((w) => w.attempt);
      expect(attempts.sort()).toEqual([1, 2]);
      expect(await fx.executor.runningCount()).toBe(2);
    });

    it('stop removes the worker and the count goes back to 0', async () => {
      const req = request();
      const id = await fx.executor.start(req);
      await fx.executor.stop({ buildId: req.buildId, attempt: req.attempt, executionId: id });
      await eventually(async () => {
        expect(await workerOf(id)).toBeUndefined();
        expect(await fx.executor.runningCount()).toBe(0);
      });
      if (fx.workerProcesses) await eventually(() => expect(fx.workerProcesses!()).toBe(0));
    });

    it('stop without an execution id (a start that failed part-way) finds the worker by build attempt', async () => {
      const req = request();
      const id = await fx.executor.start(req);
      await fx.executor.stop({ buildId: req.buildId, attempt: req.attempt });
      await eventually(async () => {
        expect(await workerOf(id)).toBeUndefined();
        expect(await fx.executor.runningCount()).toBe(0);
      });
    });

    it('stop leaves other workers alone', async () => {
      const keep = request();
      const drop = request();
      const keepId = await fx.executor.start(keep);
      const dropId = await fx.executor.start(drop);
      await fx.executor.stop({ buildId: drop.buildId, attempt: drop.attempt, executionId: dropId });
      await eventually(async () => expect(await workerOf(dropId)).toBeUndefined());
      expect(await workerOf(keepId)).toMatchObject({ buildId: keep.buildId, running: true });
      expect(await fx.executor.runningCount()).toBe(1);
    });

    it('stopping twice, or stopping an unknown worker, resolves', async () => {
      const req = request();
      const id = await fx.executor.start(req);
      await fx.executor.stop({ buildId: req.buildId, attempt: req.attempt, executionId: id });
      await expect(fx.executor.stop({ buildId: req.buildId, attempt: req.attempt, executionId: id })).resolves.toBeUndefined();
      await expect(fx.executor.stop({ buildId: randomUUID(), attempt: 1, executionId: `unknown-${randomUUID()}` })).resolves.toBeUndefined();
      await expect(fx.executor.stop({ buildId: randomUUID(), attempt: 3 })).resolves.toBeUndefined();
    });

    it('a fresh executor has no workers', async () => {
      expect(await fx.executor.listWorkers()).toEqual([]);
      expect(await fx.executor.runningCount()).toBe(0);
    });

    it('when the control plane fails, errors are BuildmanErrors with a kind, and nothing is left behind', async (ctx) => {
      if (!fx.faults) return ctx.skip();
      const req = request();
      await fx.faults.break();
      const err = await fx.executor.start(req).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(BuildmanError);
      expect(['retryable', 'capacity', 'permanent']).toContain((err as BuildmanError).kind);
      expect((err as BuildmanError).code).toMatch(/^[A-Z_]+$/);
      // The queries may work or fail during the fault; if they fail, they fail the same typed way.
      for (const query of [() => fx.executor.runningCount(), () => fx.executor.listWorkers()]) {
        await query().catch((e: unknown) => expect(e).toBeInstanceOf(BuildmanError));
      }
      await fx.executor.stop({ buildId: req.buildId, attempt: req.attempt }).catch((e: unknown) => expect(e).toBeInstanceOf(BuildmanError));

      await fx.faults.heal();
      await eventually(async () => {
        expect((await fx.executor.listWorkers()).filter((w) => w.buildId === req.buildId)).toEqual([]);
        expect(await fx.executor.runningCount()).toBe(0);
      });
      // And the executor recovers: the same attempt now starts.
      const id = await fx.executor.start(req);
      expect(await workerOf(id)).toMatchObject({ buildId: req.buildId, attempt: req.attempt });
    });
  });
}

/** Retries an assertion until it passes or {@link SETTLE_MS} runs out, then throws its last failure. */
function eventually(check: () => unknown): Promise<unknown> {
  return vi.waitFor(check, { timeout: SETTLE_MS, interval: 50 });
}
