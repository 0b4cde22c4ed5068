import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BuildRecord, LogEntry } from '../../src/builds/build-record.js';
import { MemoryBuildStore } from '../../src/builds/memory-build-store.js';
import { RequestError } from '../../src/errors/buildman-error.js';

let dir: string;
let now: number;
let store: MemoryBuildStore;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'buildman-store-'));
  now = 1_700_000_000_000;
  store = new MemoryBuildStore({ dataDir: dir, now: () => now });
});
afterEach(async () => {
  await store.close();
  await rm(dir, { recursive: true, force: true });
});

function record(id: string, createdAt: number, over: Partial<BuildRecord> = {}): BuildRecord {
  return {
    id,
    repository: 'ns/repo',
    tags: ['latest'],
    dockerfilePath: 'Dockerfile',
    context: '/',
    source: { kind: 'url', url: 'https://example.com/ctx.tar' },
    phase: 'waiting',
    state: 'queued',
    createdAt,
    updatedAt: createdAt,
    attempt: 0,
    ...over,
  };
}

const entry = (message: string, type?: LogEntry['type']): LogEntry => ({
  message,
  ...(type ? { type } : {}),
  data: { datetime: '2024-01-01 00:00:00.000000' },
});

/** A stream of `total` bytes in chunks of `chunk`. */
function bytes(total: number, chunk = 64 * 1024): Readable {
  let left = total;
  return new Readable({
    read() {
      if (left <= 0) return this.push(null);
      const n = Math.min(chunk, left);
      left -= n;
      this.push(Buffer.alloc(n, 0x61));
    },
  });
}

async function requestError(p: Promise<unknown>): Promise<RequestError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RequestError);
  return err as RequestError;
}

describe('MemoryBuildStore records', () => {
  it('creates, gets, and refuses a duplicate id', async () => {
    await store.create(record('b1', 1));
    expect(await store.get('b1')).toEqual(record('b1', 1));
    expect(await store.get('nope')).toBeUndefined();
    expect((await requestError(store.create(record('b1', 2)))).status).toBe(409);
  });

  it('hands out copies: mutating inputs or results does not change the store', async () => {
    const input = record('b1', 1, { pullCredentials: { username: 'u', password: 'p' } });
    await store.create(input);
    input.phase = 'error';
    input.tags.push('mutated');
    input.pullCredentials!.password = 'changed';

    const got = await store.get('b1');
    expect(got?.phase).toBe('waiting');
    expect(got?.tags).toEqual(['latest']);
    expect(got?.pullCredentials?.password).toBe('p');

    got!.tags.push('again');
    (await store.list())[0].tags.push('and again');
    const updated = await store.update('b1', { phase: 'building' });
    updated!.tags.push('once more');
    expect((await store.get('b1'))?.tags).toEqual(['latest']);
  });

  it('lists newest first, with a limit', async () => {
    await store.create(record('old', 100));
    await store.create(record('new', 300));
    await store.create(record('mid', 200));
    await store.create(record('new2', 300));
    expect((await store.list()).map((r) => r.id)).toEqual(['new2', 'new', 'mid', 'old']);
    expect((await store.list({ limit: 2 })).map((r) => r.id)).toEqual(['new2', 'new']);
    expect(await store.list({ limit: 0 })).toEqual([]);
  });

  it('update merges, keeps the id, and sets updatedAt from its own clock', async () => {
    await store.create(record('b1', 1));
    now += 5_000;
    const updated = await store.update('b1', { phase: 'building', state: 'running.building', attempt: 1, id: 'other', updatedAt: 42 });
    expect(updated).toMatchObject({ id: 'b1', phase: 'building', state: 'running.building', attempt: 1, repository: 'ns/repo', updatedAt: now });
    expect(await store.get('b1')).toEqual(updated);
    expect(await store.get('other')).toBeUndefined();
    expect(await store.update('missing', { phase: 'error' })).toBeUndefined();
  });
});

describe('MemoryBuildStore logs', () => {
  it('appends in Quay’s shape, returning length − 1, and reads from an offset with the total', async () => {
    expect(await store.appendLogs('b1', [entry('unpacking', 'phase')])).toBe(0);
    expect(await store.appendLogs('b1', [entry('Step 1/2 : FROM alpine', 'command'), entry('pulling')])).toBe(2);
    expect(await store.readLogs('b1', 0)).toEqual({
      total: 3,
      logs: [entry('unpacking', 'phase'), entry('Step 1/2 : FROM alpine', 'command'), entry('pulling')],
    });
    expect(await store.readLogs('b1', 2)).toEqual({ total: 3, logs: [entry('pulling')] });
    expect(await store.readLogs('b1', 3)).toEqual({ total: 3, logs: [] });
    expect(await store.readLogs('b1', 99)).toEqual({ total: 3, logs: [] });
    expect(await store.readLogs('none', 0)).toEqual({ total: 0, logs: [] });
  });

  it('keeps log entries per build and as copies', async () => {
    const e = entry('hello');
    await store.appendLogs('a', [e]);
    await store.appendLogs('b', [entry('other')]);
    e.message = 'changed';
    const read = await store.readLogs('a', 0);
    read.logs[0].message = 'changed too';
    expect((await store.readLogs('a', 0)).logs).toEqual([entry('hello')]);
    expect((await store.readLogs('b', 0)).total).toBe(1);
  });

  it('tells watchers each entry appended after they subscribed, with its index, until they unsubscribe', async () => {
    await store.appendLogs('b1', [entry('before')]);
    const seen: Array<[string, number]> = [];
    const other: string[] = [];
    const off = store.watchLogs('b1', (e, i) => seen.push([e.message, i]));
    store.watchLogs('b2', (e) => other.push(e.message));

    await store.appendLogs('b1', [entry('one'), entry('two')]);
    off();
    await store.appendLogs('b1', [entry('three')]);
    expect(seen).toEqual([
      ['one', 1],
      ['two', 2],
    ]);
    expect(other).toEqual([]);
  });

  it('serves many followers without a max-listener warning, and survives a throwing one', async () => {
    const warnings: unknown[] = [];
    const onWarning = (w: unknown) => warnings.push(w);
    process.on('warning', onWarning);
    try {
      let calls = 0;
      store.watchLogs('b1', () => {
        throw new Error('follower bug');
      });
      const offs = Array.from({ length: 200 }, () => store.watchLogs('b1', () => (calls += 1)));
      expect(await store.appendLogs('b1', [entry('x')])).toBe(0);
      expect(calls).toBe(200);
      offs.forEach((off) => off());
      await new Promise((r) => setImmediate(r));
      expect(warnings).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  });
});

describe('MemoryBuildStore contexts', () => {
  it('saves a context to <dataDir>/contexts/<id>.tar, returns its size, opens and deletes it', async () => {
    const size = await store.saveContext('b1', bytes(300_000), 1_000_000);
    expect(size).toBe(300_000);
    const file = path.join(dir, 'contexts', 'b1.tar');
    expect((await stat(file)).size).toBe(300_000);

    const stream = await store.openContext('b1');
    expect(stream).toBeDefined();
    expect((await buffer(stream!)).equals(await readFile(file))).toBe(true);

    await store.deleteContext('b1');
    expect(await store.openContext('b1')).toBeUndefined();
    await store.deleteContext('b1'); // deleting twice is fine
  });

  it('accepts exactly maxBytes', async () => {
    expect(await store.saveContext('b1', bytes(1000, 100), 1000)).toBe(1000);
  });

  it('aborts past maxBytes with a 413 naming the limit and the config key, and leaves no file behind', async () => {
    const err = await requestError(store.saveContext('b1', bytes(5 * 1024 * 1024), 1024 * 1024));
    expect(err.status).toBe(413);
    expect(err.message).toContain('1048576');
    expect(err.message).toContain('BUILDMAN_MAX_CONTEXT_BYTES');
    expect(await readdir(path.join(dir, 'contexts'))).toEqual([]);
    expect(await store.openContext('b1')).toBeUndefined();
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
