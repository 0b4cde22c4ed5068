import type { ExitCodeValue } from './exit-codes.js';

/** A failure the CLI reports as one message and an exit code; the message names the fix. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: ExitCodeValue,
  ) {
    super(message);
    this.name = 'CliError';
  }
}
