import { KeyWatchers } from './key-watchers.js';
import { KeyEvent, KeyExistsError, KeyNotFoundError, type KeyChange, type Orchestrator } from './orchestrator.js';

interface Entry {
  value: string;
  timer?: NodeJS.Timeout;
}

/**
 * The in-process orchestrator of the embedded default. Unlike Quay's memory backend it does emit
 * EXPIRE, because the embedded default needs expiry to notice dead workers.
 */
export class MemoryOrchestrator implements Orchestrator {
  private readonly entries = new Map<string, Entry>();
  private readonly watchers = new KeyWatchers();

  async getKey(key: string): Promise<string> {
    const entry = this.entries.get(key);
    if (!entry) throw new KeyNotFoundError(key);
    return entry.value;
  }

  async setKey(key: string, value: string, opts: { overwrite?: boolean; expirationSeconds?: number } = {}): Promise<void> {
    const existing = this.entries.get(key);
    if (existing && !opts.overwrite) throw new KeyExistsError(key);
    if (!existing && opts.overwrite) return;
    if (existing?.timer) clearTimeout(existing.timer);
    const entry: Entry = { value };
    if (opts.expirationSeconds !== undefined) {
      entry.timer = setTimeout(() => this.expire(key, entry), Math.max(0, opts.expirationSeconds * 1000));
      entry.timer.unref();
    }
    this.entries.set(key, entry);
    this.emit({ event: existing ? KeyEvent.SET : KeyEvent.CREATE, key, value });
  }

  async deleteKey(key: string): Promise<void> {
    const entry = this.entries.get(key);
    if (!entry) throw new KeyNotFoundError(key);
    if (entry.timer) clearTimeout(entry.timer);
    this.entries.delete(key);
    this.emit({ event: KeyEvent.DELETE, key, value: entry.value });
  }

  async getPrefixedKeys(prefix: string): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const [key, entry] of this.entries) if (key.startsWith(prefix)) out.set(key, entry.value);
    return out;
  }

  async lock(key: string, expirationSeconds = 10_000): Promise<boolean> {
    try {
      await this.setKey(key, '', { expirationSeconds });
      return true;
    } catch (err) {
      if (err instanceof KeyExistsError) return false;
      throw err;
    }
  }

  onKeyChange(prefix: string, callback: (change: KeyChange) => void): () => void {
    return this.watchers.add(prefix, callback);
  }

  async close(): Promise<void> {
    for (const entry of this.entries.values()) if (entry.timer) clearTimeout(entry.timer);
    this.entries.clear();
    this.watchers.clear();
  }

  private expire(key: string, entry: Entry): void {
    if (this.entries.get(key) !== entry) return;
    this.entries.delete(key);
    this.emit({ event: KeyEvent.EXPIRE, key, value: entry.value });
  }

  private emit(change: KeyChange): void {
    this.watchers.emit(change);
  }
}
