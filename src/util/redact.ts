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
