/**
 * Replaces known secret values (tokens, passwords, keys) wherever they appear in a text. The
 * worker's own output is captured into the manager's log, and runtime errors can echo arguments.
 */
export class SecretScrubber {
  private readonly secrets = new Set<string>();

  /** Remembers a secret; short values are ignored because replacing them would mangle ordinary text. */
  add(...values: Array<string | undefined>): void {
    for (const v of values) if (v && v.length >= 6) this.secrets.add(v);
  }

  scrub(text: string): string {
    let out = text;
    for (const secret of this.secrets) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
    return out;
  }
}
