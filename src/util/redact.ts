/** What a secret is replaced with. */
export const REDACTED = '[REDACTED]';

/**
 * Secrets worth scrubbing, longest first: a short secret inside a longer one must not break the
 * longer one's match. Under 4 characters, a "secret" would blank out ordinary words and digits.
 */
function usable(secrets: readonly string[]): string[] {
  return [...new Set(secrets)].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
}

function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  return out;
}

/** `text` with every secret (of 4 characters or more) replaced by `[REDACTED]`. */
export function redact(text: string, secrets: readonly string[]): string {
  return scrub(text, usable(secrets));
}

/**
 * A deep copy of `value` with every string (and object key) scrubbed as `redact` does. Arrays,
 * plain objects, errors and other class instances are copied with their prototype (data properties
 * only); Maps and Sets entry by entry; Dates as Dates; typed arrays and Buffers are shared, not
 * scanned; cycles are kept.
 */
export function redactObject<T>(value: T, secrets: readonly string[]): T {
  const list = usable(secrets);
  const copies = new WeakMap<object, unknown>();

  const copy = (v: unknown): unknown => {
    if (typeof v === 'string') return scrub(v, list);
    if (v === null || typeof v !== 'object') return v;
    const seen = copies.get(v);
    if (seen !== undefined) return seen;
    if (v instanceof Date) return new Date(v.getTime());
    if (v instanceof ArrayBuffer) return v.slice(0);
    if (ArrayBuffer.isView(v)) return v; // binary data is shared, not scanned
    if (Array.isArray(v)) {
      const out: unknown[] = [];
      copies.set(v, out);
      for (const item of v) out.push(copy(item));
      return out;
    }
    if (v instanceof Map) {
      const out = new Map();
      copies.set(v, out);
      for (const [k, item] of v) out.set(copy(k), copy(item));
      return out;
    }
    if (v instanceof Set) {
      const out = new Set();
      copies.set(v, out);
      for (const item of v) out.add(copy(item));
      return out;
    }
    // Own properties, enumerable or not, so an Error's message and stack are scrubbed too.
    const out = Object.create(Object.getPrototypeOf(v)) as Record<string, unknown>;
    copies.set(v, out);
    for (const key of Object.getOwnPropertyNames(v)) {
      const descriptor = Object.getOwnPropertyDescriptor(v, key);
      if (descriptor === undefined || !('value' in descriptor)) continue;
      Object.defineProperty(out, scrub(key, list), { ...descriptor, value: copy(descriptor.value) });
    }
    return out;
  };

  return copy(value) as T;
}
