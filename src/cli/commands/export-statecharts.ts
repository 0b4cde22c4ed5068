import { resolve } from 'node:path';
import type { Command } from 'commander';
import { exportStatecharts } from '../../visualize/export-statecharts.js';
import type { CliContext } from '../cli-context.js';

export function registerExportStatechartsCommand(program: Command, ctx: CliContext): void {
  program
    .command('export-statecharts')
    .description("write every machine's statechart for Stately's visualizer, as JSON, Mermaid, DOT and SVG")
    .option('--out <dir>', 'folder to write into', 'visualizations')
    .action(async (opts: { out: string }) => {
      const result = await exportStatecharts(resolve(opts.out));
      for (const file of result.files) ctx.stdout(`wrote ${file}\n`);
      for (const warning of result.warnings) ctx.stderr(`buildman: warning: ${warning}\n`);
    });
}
