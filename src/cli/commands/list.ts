import { type Command, InvalidArgumentError } from 'commander';
import { formatBuildTable } from '../build-format.js';
import type { CliContext } from '../cli-context.js';
import { clientFor, serverOption } from '../server-option.js';

export function registerListCommand(program: Command, ctx: CliContext): void {
  program
    .command('list')
    .description('list recent builds, newest first')
    .option('--limit <n>', 'how many builds (1-1000)', parseLimit)
    .option('--json', 'print the builds as JSON')
    .addOption(serverOption())
    .action(async (opts: { limit?: number; json?: boolean; server?: string }) => {
      const builds = await clientFor(opts, ctx).list(opts.limit);
      if (opts.json) ctx.stdout(JSON.stringify(builds, null, 2) + '\n');
      else if (builds.length === 0) ctx.stdout('no builds yet; submit one with `buildman submit <dir> --repository ns/name`\n');
      else ctx.stdout(formatBuildTable(builds, Date.now()));
    });
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('expected a whole number from 1 to 1000.');
  return n;
}
