import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { BuildmanError, ConfigError } from '../errors/buildman-error.js';
import { PACKAGE_ROOT } from '../util/package-root.js';
import { ApiError, UnreachableError } from './api-client.js';
import { processContext, type CliContext } from './cli-context.js';
import { CliError } from './cli-error.js';
import { registerCancelCommand } from './commands/cancel.js';
import { registerCheckConfigCommand } from './commands/check-config.js';
import { registerExportStatechartsCommand } from './commands/export-statecharts.js';
import { registerHistoryCommand } from './commands/history.js';
import { registerListCommand } from './commands/list.js';
import { registerLogsCommand } from './commands/logs.js';
import { registerReplayCommand } from './commands/replay.js';
import { registerServeCommand } from './commands/serve.js';
import { registerStatusCommand } from './commands/status.js';
import { registerSubmitCommand } from './commands/submit.js';
import { registerWorkerCommand } from './commands/worker.js';
import { ExitCode } from './exit-codes.js';

/** The `buildman` command tree, writing through `ctx`. Commander exits are turned into exceptions. */
export function createProgram(ctx: CliContext): Command {
  const program = new Command('buildman')
    .description('A drop-in build manager for Quay container-image builds.')
    .version(packageVersion())
    // Set before the subcommands are added, so they inherit both.
    .exitOverride()
    .configureOutput({ writeOut: (text) => ctx.stdout(text), writeErr: (text) => ctx.stderr(text) })
    .showHelpAfterError('(add --help for usage)');
  registerServeCommand(program, ctx);
  registerSubmitCommand(program, ctx);
  registerStatusCommand(program, ctx);
  registerListCommand(program, ctx);
  registerLogsCommand(program, ctx);
  registerCancelCommand(program, ctx);
  registerHistoryCommand(program, ctx);
  registerReplayCommand(program, ctx);
  registerExportStatechartsCommand(program, ctx);
  registerCheckConfigCommand(program, ctx);
  registerWorkerCommand(program, ctx);
  return program;
}

/** Runs one command line (without `node` and the script) and returns the exit code. */
export async function runCli(argv: readonly string[], ctx: CliContext = processContext()): Promise<number> {
  try {
    await createProgram(ctx).parseAsync([...argv], { from: 'user' });
    return ctx.exitCode;
  } catch (err) {
    return reportError(err, ctx);
  }
}

/** Prints the failure (unless Commander already did) and picks the exit code that says what kind it was. */
function reportError(err: unknown, ctx: CliContext): number {
  // Commander has printed its own message (or the help / version) already.
  if (err instanceof CommanderError) return err.exitCode === 0 ? ExitCode.OK : ExitCode.USAGE;

  const say = (message: string) => ctx.stderr(`buildman: ${message}\n`);
  if (err instanceof CliError) {
    say(err.message);
    return err.exitCode;
  }
  if (err instanceof UnreachableError) {
    say(err.message);
    return ExitCode.UNREACHABLE;
  }
  if (err instanceof ApiError) {
    if (err.status === 404) {
      say(`${err.message} (see \`buildman list\` for recent builds)`);
      return ExitCode.NOT_FOUND;
    }
    say(err.message);
    return err.status === 400 || err.status === 401 || err.status === 413 || err.status === 415 ? ExitCode.USAGE : ExitCode.FAILED;
  }
  if (err instanceof ConfigError) {
    say([err.message, ...err.issues.map((issue) => `  ${issue}`)].join('\n'));
    return ExitCode.USAGE;
  }
  // From `serve` starting up: a permanent one (a port taken, an unsupported setting) is the setup's to fix.
  if (err instanceof BuildmanError) {
    say(err.message);
    return err.retryable ? ExitCode.FAILED : ExitCode.USAGE;
  }
  say(`unexpected error: ${err instanceof Error ? (ctx.env.BUILDMAN_DEBUG ? err.stack : err.message) : String(err)}`);
  return ExitCode.FAILED;
}

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
