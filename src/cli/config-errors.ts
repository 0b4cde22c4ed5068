import { ConfigError } from '../errors/buildman-error.js';
import { CliError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';

/**
 * A `ConfigError` as a usage failure: its message (which names the file) and each issue on its own
 * line, without repeating issues the message already lists.
 */
export function configFailure(err: unknown): unknown {
  if (!(err instanceof ConfigError)) return err;
  const extra = err.issues.filter((issue) => !err.message.includes(issue));
  return new CliError([err.message, ...extra.map((issue) => `  ${issue}`)].join('\n'), ExitCode.USAGE);
}

/** Unknown keys are not fatal (Quay's config.yaml holds many keys buildman never reads), but may be typos. */
export function unknownKeyWarnings(keys: readonly string[], file: string | undefined): string {
  return keys.map((key) => `warning: ${file ?? 'config'}: unknown key ${key} is ignored (a typo?)\n`).join('');
}
