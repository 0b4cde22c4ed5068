import type { Command } from 'commander';
import type { CliContext } from '../cli-context.js';
import { clientFor, serverOption } from '../server-option.js';

export function registerCancelCommand(program: Command, ctx: CliContext): void {
  program
    .command('cancel')
    .description('cancel a build that has not started pushing')
    .argument('<id>', 'build id')
    .addOption(serverOption())
    .action(async (id: string, opts: { server?: string }) => {
      const build = await clientFor(opts, ctx).cancel(id);
      ctx.stdout(`${build.id} ${build.phase}\n`);
    });
}
