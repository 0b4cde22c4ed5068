import { writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { HistoryEntry } from '../../persistence/actor-store.js';
import { describeEvent } from '../../replay/describe-event.js';
import { recordingOf } from '../../replay/history-recording.js';
import type { CliContext } from '../cli-context.js';
import { CliError } from '../cli-error.js';
import { ExitCode } from '../exit-codes.js';
import { clientFor, serverOption } from '../server-option.js';

/** One line per event: time, offset from the first event, the event, and the state it led to. */
export function formatHistory(entries: HistoryEntry[]): string {
  if (entries.length === 0) return 'no history recorded for this build\n';
  const t0 = entries[0].at;
  let previous = '';
  const lines = entries.map((e, i) => {
    const time = new Date(e.at).toISOString().replace('T', ' ').replace('Z', '');
    const offset = `+${((e.at - t0) / 1000).toFixed(3)}s`.padStart(10);
    const move = e.state === previous ? `(stays ${e.state})` : `${previous || '∅'} → ${e.state}`;
    previous = e.state;
    return `${String(i + 1).padStart(3)}  ${time} ${offset}  ${describeEvent(e.event).padEnd(48)} ${move}`;
  });
  const versions = [...new Set(entries.map((e) => e.machineVersion))];
  return `machine version ${versions.join(', ')}\n${lines.join('\n')}\n`;
}

export function registerHistoryCommand(program: Command, ctx: CliContext): void {
  program
    .command('history')
    .description("print a build's persisted history: every event its statechart processed, when, and the state it led to")
    .argument('<id>', 'build id')
    .option('--json', 'print the entries as JSON')
    .option('--export <file>', 'write the history to FILE for `buildman replay FILE` (a bug report attachment)')
    .addOption(serverOption())
    .action(async (id: string, opts: { json?: boolean; export?: string; server?: string }) => {
      const history = await clientFor(opts, ctx).history(id);
      if (opts.export) {
        if (history.length === 0) throw new CliError(`build ${id} has no recorded history to export`, ExitCode.NOT_FOUND);
        const recording = recordingOf(id, history);
        try {
          await writeFile(opts.export, JSON.stringify(recording, null, 2) + '\n');
        } catch (err) {
          throw new CliError(`cannot write ${opts.export}: ${(err as Error).message}`, ExitCode.USAGE);
        }
        ctx.stdout(`wrote ${history.length} history entries of build ${id} to ${opts.export}\n`);
        if (!recording.input) ctx.stderr(`buildman: warning: the history does not start with the build's creation, so it carries no input to replay from\n`);
        return;
      }
      ctx.stdout(opts.json ? JSON.stringify(history, null, 2) + '\n' : formatHistory(history));
    });
}
