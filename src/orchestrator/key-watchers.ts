import type { KeyChange } from './orchestrator.js';

/** Who watches which key prefix of an orchestrator; a watcher that throws breaks nothing else. */
export class KeyWatchers {
  private readonly watchers = new Set<{ prefix: string; callback: (change: KeyChange) => void }>();

  constructor(private readonly onError: (change: KeyChange, err: unknown) => void = () => {}) {}

  add(prefix: string, callback: (change: KeyChange) => void): () => void {
    const watcher = { prefix, callback };
    this.watchers.add(watcher);
    return () => this.watchers.delete(watcher);
  }

  emit(change: KeyChange): void {
    for (const w of this.watchers) {
      if (!change.key.startsWith(w.prefix)) continue;
      try {
        w.callback(change);
      } catch (err) {
        this.onError(change, err);
      }
    }
  }

  clear(): void {
    this.watchers.clear();
  }
}
