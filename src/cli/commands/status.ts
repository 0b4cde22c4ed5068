import type { Command } from 'commander';
import { formatBuildDetails } from '../build-format.js';
import type { CliContext } from '../cli-context.js';
import { clientFor, serverOption } from '../server-option.js';

export function registerStatusCommand(program: Command, ctx: CliContext): void {
  program
    .command('status')
    .description('show one build: repository, tags, phase, state, attempt, executor, age')
    .argument('<id>', 'build id')
    .option('--json', 'print the build as JSON')
    .addOption(serverOption())
    .action(async (id: string, opts: { json?: boolean; server?: string }) => {
      const build = await clientFor(opts, ctx).get(id);
      ctx.stdout(opts.json ? JSON.stringify(build, null, 2) + '\n' : formatBuildDetails(build, Date.now()));
    });
}
