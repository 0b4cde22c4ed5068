import { afterEach, describe, expect, it } from 'vitest';
import { KeyEvent, KeyExistsError, KeyNotFoundError, type KeyChange, type Orchestrator } from '../../src/orchestrator/orchestrator.js';

export interface OrchestratorUnderTest {
  orchestrator: Orchestrator;
  /** Every key a test writes starts with this (the orchestrator's ORCHESTRATOR_PREFIX, for Redis). */
  prefix: string;
  /** Closes the orchestrator and removes what the test left behind. */
  dispose(): Promise<void>;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `condition` until it holds; fails after `timeoutMs`. */
export async function until(condition: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`${what} not met within ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** Records the changes an orchestrator reports under a prefix. */
export function recordChanges(orchestrator: Orchestrator, prefix: string): { changes: KeyChange[]; stop: () => void } {
  const changes: KeyChange[] = [];
  const stop = orchestrator.onKeyChange(prefix, (change) => changes.push(change));
  return { changes, stop };
}

/**
 * The behaviour every Orchestrator must have: Quay's test_orchestrator (reference §9) plus expiry.
 * Events may arrive asynchronously (Redis delivers them through pub/sub), so tests wait for them,
 * and "no event" is checked by writing a marker key afterwards and waiting for its event: events
 * arrive in the order of the writes.
 */
export function orchestratorContract(name: string, make: () => Promise<OrchestratorUnderTest>): void {
  describe(`Orchestrator contract: ${name}`, () => {
    const open: OrchestratorUnderTest[] = [];

    async function fresh(): Promise<{ orch: Orchestrator; p: string }> {
      const made = await make();
      open.push(made);
      return { orch: made.orchestrator, p: made.prefix };
    }

    afterEach(async () => {
      await Promise.all(open.splice(0).map((m) => m.dispose()));
    });

    /** Writes a marker key and waits for its CREATE, so every earlier event has been delivered (the key stays). */
    async function drain(orch: Orchestrator, p: string, changes: KeyChange[]): Promise<void> {
      const marker = `${p}zz-marker/${Math.random().toString(36).slice(2)}`;
      await orch.setKey(marker, 'marker');
      await until(() => changes.some((c) => c.key === marker), 3000, 'marker event');
      changes.splice(
        changes.findIndex((c) => c.key === marker),
        1,
      );
    }

    it('lock: acquired once, refused while held, acquired again after delete', async () => {
      const { orch, p } = await fresh();
      const key = `${p}lock/build-1`;
      expect(await orch.lock(key)).toBe(true);
      expect(await orch.lock(key)).toBe(false);
      expect(await orch.lock(key, 5)).toBe(false);
      await orch.deleteKey(key);
      expect(await orch.lock(key)).toBe(true);
      expect(await orch.getKey(key)).toBe('');
    });

    it('getPrefixedKeys: main keys under the prefix with their values, right after deletes', async () => {
      const { orch, p } = await fresh();
      for (let i = 0; i < 5; i++) await orch.setKey(`${p}building/job-${i}`, `value-${i}`, { expirationSeconds: 60 });
      await orch.setKey(`${p}other/x`, 'x');
      const keys = await orch.getPrefixedKeys(`${p}building/`);
      expect(keys).toEqual(new Map([0, 1, 2, 3, 4].map((i) => [`${p}building/job-${i}`, `value-${i}`])));

      await orch.deleteKey(`${p}building/job-0`);
      await orch.deleteKey(`${p}building/job-3`);
      expect((await orch.getPrefixedKeys(`${p}building/`)).size).toBe(3);
      expect([...(await orch.getPrefixedKeys(`${p}other/`)).keys()]).toEqual([`${p}other/x`]);
      expect((await orch.getPrefixedKeys(`${p}nothing-here/`)).size).toBe(0);
    });

    it('setKey: overwrite of a missing key writes nothing and reports nothing', async () => {
      const { orch, p } = await fresh();
      const { changes } = recordChanges(orch, p);
      await orch.setKey(`${p}building/missing`, 'v', { overwrite: true });
      await orch.setKey(`${p}building/missing2`, 'v', { overwrite: true, expirationSeconds: 1 });
      await expect(orch.getKey(`${p}building/missing`)).rejects.toBeInstanceOf(KeyNotFoundError);
      await expect(orch.getKey(`${p}building/missing2`)).rejects.toBeInstanceOf(KeyNotFoundError);
      await drain(orch, p, changes);
      expect(changes).toEqual([]);
    });

    it('setKey: a plain set works; without overwrite an existing key is refused and kept', async () => {
      const { orch, p } = await fresh();
      const key = `${p}building/job`;
      await orch.setKey(key, 'first');
      expect(await orch.getKey(key)).toBe('first');
      const refused = orch.setKey(key, 'second');
      await expect(refused).rejects.toBeInstanceOf(KeyExistsError);
      await expect(refused).rejects.toMatchObject({ key });
      expect(await orch.getKey(key)).toBe('first');
      await orch.setKey(key, 'third', { overwrite: true });
      expect(await orch.getKey(key)).toBe('third');
      await orch.setKey(key, 'fourth', { overwrite: true, expirationSeconds: 60 });
      expect(await orch.getKey(key)).toBe('fourth');
    });

    it('onKeyChange: CREATE, SET and DELETE with key and value, for watched prefixes only', async () => {
      const { orch, p } = await fresh();
      const building = recordChanges(orch, `${p}building/`);
      const everything = recordChanges(orch, p);
      const key = `${p}building/job`;
      await orch.setKey(key, 'v1');
      await orch.setKey(key, 'v2', { overwrite: true });
      await orch.setKey(`${p}cancel/job`, 'c1');
      await orch.deleteKey(key);
      await until(() => building.changes.length >= 3 && everything.changes.length >= 4, 3000, 'events');
      expect(building.changes).toEqual([
        { event: KeyEvent.CREATE, key, value: 'v1' },
        { event: KeyEvent.SET, key, value: 'v2' },
        { event: KeyEvent.DELETE, key, value: 'v2' },
      ]);
      expect(everything.changes).toEqual([
        { event: KeyEvent.CREATE, key, value: 'v1' },
        { event: KeyEvent.SET, key, value: 'v2' },
        { event: KeyEvent.CREATE, key: `${p}cancel/job`, value: 'c1' },
        { event: KeyEvent.DELETE, key, value: 'v2' },
      ]);
    });

    it('onKeyChange: the unsubscribe stops delivery; a throwing watcher does not stop the others', async () => {
      const { orch, p } = await fresh();
      const stopped = recordChanges(orch, p);
      stopped.stop();
      orch.onKeyChange(p, () => {
        throw new Error('watcher failure');
      });
      const { changes } = recordChanges(orch, p);
      await orch.setKey(`${p}a`, '1');
      await orch.setKey(`${p}b`, '2');
      await until(() => changes.length >= 2, 3000, 'events');
      expect(changes.map((c) => c.key)).toEqual([`${p}a`, `${p}b`]);
      expect(stopped.changes).toEqual([]);
    });

    it('getKey and deleteKey of a missing key throw KeyNotFoundError naming the key', async () => {
      const { orch, p } = await fresh();
      const key = `${p}building/none`;
      await expect(orch.getKey(key)).rejects.toBeInstanceOf(KeyNotFoundError);
      await expect(orch.deleteKey(key)).rejects.toMatchObject({ name: 'KeyNotFoundError', key });
      await orch.setKey(key, 'v');
      await orch.deleteKey(key);
      await expect(orch.getKey(key)).rejects.toBeInstanceOf(KeyNotFoundError);
      await expect(orch.deleteKey(key)).rejects.toBeInstanceOf(KeyNotFoundError);
    });

    it('expiry: EXPIRE with the last value, once; the key is gone afterwards', async () => {
      const { orch, p } = await fresh();
      const { changes } = recordChanges(orch, `${p}building/`);
      const key = `${p}building/job`;
      const started = Date.now();
      await orch.setKey(key, 'v1', { expirationSeconds: 1 });
      await orch.setKey(key, 'v2', { overwrite: true, expirationSeconds: 1 });
      await until(() => changes.some((c) => c.event === KeyEvent.EXPIRE), 3500, 'EXPIRE');
      expect(Date.now() - started).toBeGreaterThanOrEqual(950);
      expect(changes.filter((c) => c.event === KeyEvent.EXPIRE)).toEqual([{ event: KeyEvent.EXPIRE, key, value: 'v2' }]);
      await expect(orch.getKey(key)).rejects.toBeInstanceOf(KeyNotFoundError);
      expect((await orch.getPrefixedKeys(`${p}building/`)).size).toBe(0);
      // A new key under the same name starts over.
      await orch.setKey(key, 'again');
      await sleep(1200);
      expect(changes.filter((c) => c.event === KeyEvent.EXPIRE)).toHaveLength(1);
    });

    it('expiry: an overwrite with a new expiration postpones it (a heartbeat)', async () => {
      const { orch, p } = await fresh();
      const { changes } = recordChanges(orch, p);
      const key = `${p}building/job`;
      await orch.setKey(key, 'v1', { expirationSeconds: 1 });
      await sleep(600);
      await orch.setKey(key, 'v2', { overwrite: true, expirationSeconds: 1.5 });
      await sleep(900); // past the first deadline
      expect(changes.some((c) => c.event === KeyEvent.EXPIRE)).toBe(false);
      expect(await orch.getKey(key)).toBe('v2');
      await until(() => changes.some((c) => c.event === KeyEvent.EXPIRE), 3000, 'EXPIRE');
      expect(changes.at(-1)).toEqual({ event: KeyEvent.EXPIRE, key, value: 'v2' });
    });

    it('expiry: cancelled by delete and by an overwrite without expiration', async () => {
      const { orch, p } = await fresh();
      const { changes } = recordChanges(orch, p);
      await orch.setKey(`${p}building/deleted`, 'd', { expirationSeconds: 1 });
      await orch.setKey(`${p}building/kept`, 'k1', { expirationSeconds: 1 });
      await orch.deleteKey(`${p}building/deleted`);
      await orch.setKey(`${p}building/kept`, 'k2', { overwrite: true });
      await sleep(2300);
      await drain(orch, p, changes);
      expect(changes.filter((c) => c.event === KeyEvent.EXPIRE)).toEqual([]);
      expect(await orch.getKey(`${p}building/kept`)).toBe('k2');
    });

    it('lock: the lock expires after its expiration and can be taken again', async () => {
      const { orch, p } = await fresh();
      const { changes } = recordChanges(orch, `${p}lock/`);
      const key = `${p}lock/build-2`;
      expect(await orch.lock(key, 1)).toBe(true);
      await until(() => changes.some((c) => c.event === KeyEvent.EXPIRE && c.key === key), 3500, 'lock EXPIRE');
      expect(await orch.lock(key, 1)).toBe(true);
    });
  });
}
