/**
 * Quay's orchestrator (reference §3): a key-value store whose keys can expire, with change events.
 * The memory backend serves the embedded default; the Redis backend keeps Quay's key layout.
 */
export enum KeyEvent {
  CREATE = 1,
  SET = 2,
  DELETE = 3,
  EXPIRE = 4,
}

export interface KeyChange {
  event: KeyEvent;
  key: string;
  /** The value at the time of the change (for EXPIRE and DELETE: the last value). */
  value: string;
}

export interface Orchestrator {
  /** Throws `KeyNotFoundError` when missing. */
  getKey(key: string): Promise<string>;
  /**
   * Writes a key. Without `overwrite` an existing key is an error (`KeyExistsError`); with it a
   * missing key is left unwritten (Quay's XX). `expirationSeconds` arms the key's expiry event.
   */
  setKey(key: string, value: string, opts?: { overwrite?: boolean; expirationSeconds?: number }): Promise<void>;
  /** Throws `KeyNotFoundError` when missing. */
  deleteKey(key: string): Promise<void>;
  /** Main keys (no `/expiring` or `/expired` siblings) under a prefix, with their values. */
  getPrefixedKeys(prefix: string): Promise<Map<string, string>>;
  /** Takes a lock key if free. */
  lock(key: string, expirationSeconds?: number): Promise<boolean>;
  /** Calls `callback` for every change of a key under `prefix`. Returns an unsubscribe. */
  onKeyChange(prefix: string, callback: (change: KeyChange) => void): () => void;
  close(): Promise<void>;
}

export class KeyNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`orchestrator key not found: ${key}`);
    this.name = 'KeyNotFoundError';
  }
}

export class KeyExistsError extends Error {
  constructor(readonly key: string) {
    super(`orchestrator key already exists: ${key}`);
    this.name = 'KeyExistsError';
  }
}

/** Joins key parts with exactly one `/`, as Quay's slash_join does. */
export function slashJoin(...parts: string[]): string {
  return parts
    .map((p, i) => {
      let s = p;
      if (i > 0 && s.startsWith('/')) s = s.slice(1);
      if (i < parts.length - 1 && s.endsWith('/')) s = s.slice(0, -1);
      return s;
    })
    .filter((p) => p !== '')
    .join('/');
}
