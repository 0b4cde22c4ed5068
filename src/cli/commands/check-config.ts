import type { Command } from 'commander';
import type { CliContext } from '../cli-context.js';
import { configFailure, unknownKeyWarnings } from '../config-errors.js';

export function registerCheckConfigCommand(program: Command, ctx: CliContext): void {
  program
    .command('check-config')
    .description('validate a config.yaml and print what buildman would run with; exit 2 if it cannot be used')
    .argument('<file>', 'Quay-style config.yaml')
    .action(async (file: string) => {
      // Loaded on demand so client commands do not pay for the config machinery.
      const { loadConfig } = await import('../../config/load-config.js');
      const { describeConfig } = await import('../../config/describe-config.js');
      const config = await loadConfig({ file }).catch((err: unknown) => {
        throw configFailure(err);
      });
      ctx.stderr(unknownKeyWarnings(config.unknownKeys, file));
      ctx.stdout(describeConfig(config, { source: file }).trimEnd() + '\n');
    });
}
