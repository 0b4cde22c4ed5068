import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryBuildStore } from '../../src/builds/memory-build-store.js';
import { buildStoreContract, bytes, entry, requestError } from './build-store-contract.js';

buildStoreContract('MemoryBuildStore', async ({ now }) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'buildman-store-'));
  return { store: new MemoryBuildStore({ dataDir: dir, now }), cleanup: () => rm(dir, { recursive: true, force: true }) };
});

/** The memory store tells its watchers synchronously, before appendLogs resolves. */
describe('MemoryBuildStore watchers', () => {
  it('has called every watcher by the time appendLogs resolves', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'buildman-store-'));
    const store = new MemoryBuildStore({ dataDir: dir });
    const seen: Array<[string, number]> = [];
    let calls = 0;
    const off = store.watchLogs('b1', (e, i) => seen.push([e.message, i]));
    const offs = Array.from({ length: 200 }, () => store.watchLogs('b1', () => (calls += 1)));
    await store.appendLogs('b1', [entry('one'), entry('two')]);
    expect(seen).toEqual([
      ['one', 0],
      ['two', 1],
    ]);
    expect(calls).toBe(400);
    off();
    offs.forEach((o) => o());
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
});

/** What only the memory store does: contexts as files under its data directory. */
describe('MemoryBuildStore contexts on disk', () => {
  let dir: string;
  let store: MemoryBuildStore;

  beforeEach(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'buildman-store-'));
    store = new MemoryBuildStore({ dataDir: dir });
  });
  afterEach(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('saves a context to <dataDir>/contexts/<id>.tar', async () => {
    expect(await store.saveContext('b1', bytes(300_000), 1_000_000)).toBe(300_000);
    const file = path.join(dir, 'contexts', 'b1.tar');
    expect((await stat(file)).size).toBe(300_000);
    expect((await buffer((await store.openContext('b1'))!)).equals(await readFile(file))).toBe(true);
  });

  it('leaves no file behind past maxBytes', async () => {
    expect((await requestError(store.saveContext('b1', bytes(5 * 1024 * 1024), 1024 * 1024))).status).toBe(413);
    expect(await readdir(path.join(dir, 'contexts'))).toEqual([]);
  });

  it('removes the partial file when the upload itself fails', async () => {
    let sent = 0;
    const broken = new Readable({
      read() {
        if (sent++ < 3) this.push(Buffer.alloc(1024));
        else this.destroy(new Error('client went away'));
      },
    });
    await expect(store.saveContext('b1', broken, 1_000_000)).rejects.toThrow('client went away');
    expect(await readdir(path.join(dir, 'contexts'))).toEqual([]);
  });

  it('refuses ids that could escape the contexts directory', async () => {
    for (const id of ['../evil', '..', 'a/b', '.hidden', '']) {
      expect((await requestError(store.saveContext(id, bytes(10), 100))).status).toBe(400);
    }
  });
});
