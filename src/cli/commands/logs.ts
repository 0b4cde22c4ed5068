import type { Command } from 'commander';
import { formatLogEntry } from '../build-format.js';
import type { CliContext } from '../cli-context.js';
import { followBuild } from '../follow-build.js';
import { clientFor, serverOption } from '../server-option.js';

export function registerLogsCommand(program: Command, ctx: CliContext): void {
  program
    .command('logs')
    .description("print a build's log")
    .argument('<id>', 'build id')
    .option('-f, --follow', 'keep printing new entries until the build ends')
    .addOption(serverOption())
    .action(async (id: string, opts: { follow?: boolean; server?: string }) => {
      const client = clientFor(opts, ctx);
      if (opts.follow) {
        await followBuild(client, id, ctx);
        return;
      }
      const { logs } = await client.logs(id);
      for (const entry of logs) ctx.stdout(formatLogEntry(entry) + '\n');
    });
}
