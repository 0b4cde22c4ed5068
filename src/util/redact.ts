/** What a secret is replaced with. */
export const REDACTED = '[REDACTED]';

/**
 * Secrets worth scrubbing, longest first: a short secret inside a longer one must not break the
 * longer one's match. Under 4 characters, a "secret" would blank out ordinary words and digits.
 */
function usable(secrets: readonly string[]): string[] {
  return [...new Set(secrets)].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
}

/**
 * A function replacing every secret (of 4 characters or more) in a text by `[REDACTED]`. Build it
 * once for a fixed set of secrets and call it per text (the logger does, for every line).
 */
export function secretScrubber(secrets: readonly string[]): (text: string) => string {
  const list = usable(secrets);
  return (text) => {
    let out = text;
    for (const secret of list) if (out.includes(secret)) out = out.split(secret).join(REDACTED);
    return out;
  };
}

/** `text` with every secret (of 4 characters or more) replaced by `[REDACTED]`. */
export function redact(text: string, secrets: readonly string[]): string {
  return secretScrubber(secrets)(text);
}
