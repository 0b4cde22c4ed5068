import type { ActorStore, HistoryEntry, StoredSnapshot } from './actor-store.js';

/** Actor persistence for the embedded default: kept in this process, bounded per build. */
export class MemoryActorStore implements ActorStore {
  private readonly snapshots = new Map<string, StoredSnapshot>();
  private readonly histories = new Map<string, HistoryEntry[]>();

  constructor(private readonly opts: { maxHistoryEntries?: number } = {}) {}

  async save(buildId: string, snapshot: StoredSnapshot, history: HistoryEntry[]): Promise<void> {
    // Copies, so later changes by the caller cannot rewrite what was recorded.
    this.snapshots.set(buildId, structuredClone(snapshot));
    const entries = this.histories.get(buildId) ?? [];
    entries.push(...structuredClone(history));
    const max = this.opts.maxHistoryEntries ?? 10_000;
    if (entries.length > max) entries.splice(0, entries.length - max);
    this.histories.set(buildId, entries);
  }

  async load(buildId: string): Promise<StoredSnapshot | undefined> {
    const s = this.snapshots.get(buildId);
    return s && structuredClone(s);
  }

  async history(buildId: string): Promise<HistoryEntry[]> {
    return structuredClone(this.histories.get(buildId) ?? []);
  }

  async close(): Promise<void> {}
}
