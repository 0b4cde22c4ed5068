import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { RequestError } from '../errors/buildman-error.js';
import type { BuildRecord, LogEntry } from './build-record.js';
import type { BuildStore } from './build-store.js';

/** The config key that sets the upload cap, named in the 413 so the operator knows what to raise. */
const MAX_CONTEXT_KEY = 'BUILDMAN_MAX_CONTEXT_BYTES';
/** Build ids become file names; anything else could escape the contexts directory. */
const SAFE_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]*$/;

/**
 * Builds and their logs in memory, uploaded contexts on disk (`<dataDir>/contexts/<id>.tar`).
 * Everything handed out is a copy, so a caller cannot change the store by mutating a result.
 */
export class MemoryBuildStore implements BuildStore {
  private readonly records = new Map<string, BuildRecord>();
  private readonly logs = new Map<string, LogEntry[]>();
  /** One event per build id; any number of followers may listen. */
  private readonly appended = new EventEmitter();
  private readonly contextsDir: string;
  private readonly now: () => number;

  constructor(opts: { dataDir: string; now?: () => number }) {
    this.contextsDir = path.join(opts.dataDir, 'contexts');
    this.now = opts.now ?? Date.now;
    this.appended.setMaxListeners(0);
  }

  async create(record: BuildRecord): Promise<void> {
    if (this.records.has(record.id)) throw new RequestError(`Build ${record.id} already exists`, 409, 'id');
    this.records.set(record.id, structuredClone(record));
  }

  async get(id: string): Promise<BuildRecord | undefined> {
    const record = this.records.get(id);
    return record && structuredClone(record);
  }

  async list(opts: { limit?: number } = {}): Promise<BuildRecord[]> {
    // Reversed insertion order first, so a stable sort keeps the later of two same-time builds first.
    const newestFirst = [...this.records.values()].reverse().sort((a, b) => b.createdAt - a.createdAt);
    const limited = opts.limit === undefined ? newestFirst : newestFirst.slice(0, Math.max(0, opts.limit));
    return limited.map((r) => structuredClone(r));
  }

  async update(id: string, patch: Partial<BuildRecord>): Promise<BuildRecord | undefined> {
    const current = this.records.get(id);
    if (!current) return undefined;
    const next: BuildRecord = { ...current, ...structuredClone(patch), id, updatedAt: this.now() };
    this.records.set(id, next);
    return structuredClone(next);
  }

  async appendLogs(id: string, entries: LogEntry[]): Promise<number> {
    let list = this.logs.get(id);
    if (!list) this.logs.set(id, (list = []));
    for (const entry of entries) {
      const stored = structuredClone(entry);
      list.push(stored);
      if (this.appended.listenerCount(id) > 0) this.appended.emit(id, structuredClone(stored), list.length - 1);
    }
    return list.length - 1;
  }

  async readLogs(id: string, start: number): Promise<{ total: number; logs: LogEntry[] }> {
    const list = this.logs.get(id) ?? [];
    return { total: list.length, logs: list.slice(Math.max(0, start)).map((e) => structuredClone(e)) };
  }

  watchLogs(id: string, listener: (entry: LogEntry, index: number) => void): () => void {
    // A follower that throws must not fail the append (the worker's LogMessage) or starve other followers.
    const guarded = (entry: LogEntry, index: number) => {
      try {
        listener(entry, index);
      } catch {
        // the follower reports its own errors
      }
    };
    this.appended.on(id, guarded);
    return () => {
      this.appended.off(id, guarded);
    };
  }

  async saveContext(id: string, data: Readable, maxBytes: number): Promise<number> {
    const file = this.contextPath(id);
    // Written under a temporary name and renamed, so `openContext` never sees half an upload.
    const partial = `${file}.${randomBytes(4).toString('hex')}.partial`;
    await mkdir(this.contextsDir, { recursive: true });

    let bytes = 0;
    const counter = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        bytes += chunk.length;
        if (bytes > maxBytes) {
          callback(new RequestError(`Build context is larger than the limit of ${maxBytes} bytes (${MAX_CONTEXT_KEY})`, 413, 'context'));
        } else {
          callback(null, chunk);
        }
      },
    });
    try {
      await pipeline(data, counter, createWriteStream(partial, { mode: 0o600 }));
      await rename(partial, file);
    } catch (err) {
      await rm(partial, { force: true });
      throw err;
    }
    return bytes;
  }

  async openContext(id: string): Promise<Readable | undefined> {
    const file = this.contextPath(id);
    try {
      await stat(file);
    } catch {
      return undefined;
    }
    return createReadStream(file);
  }

  async deleteContext(id: string): Promise<void> {
    await rm(this.contextPath(id), { force: true });
  }

  async close(): Promise<void> {
    this.appended.removeAllListeners();
  }

  private contextPath(id: string): string {
    if (!SAFE_ID.test(id)) throw new RequestError(`Invalid build id for a context file: ${JSON.stringify(id)}`, 400, 'id');
    return path.join(this.contextsDir, `${id}.tar`);
  }
}
