import type { Command } from 'commander';
import type { HistoryEntry } from '../../persistence/actor-store.js';
import type { CliContext } from '../cli-context.js';
import { clientFor, serverOption } from '../server-option.js';

/** Events worth a short description; the rest print their type and any payload. */
function describe(event: HistoryEntry['event']): string {
  const { type, ...rest } = event;
  if (type === 'xstate.init') return 'created';
  if (type.startsWith('xstate.done.actor.')) return `${type.slice('xstate.done.actor.'.length)} finished`;
  const details = Object.entries(rest)
    .filter(([k]) => k !== 'at')
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return details ? `${type} ${details}` : type;
}

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
    return `${String(i + 1).padStart(3)}  ${time} ${offset}  ${describe(e.event).padEnd(48)} ${move}`;
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
    .addOption(serverOption())
    .action(async (id: string, opts: { json?: boolean; server?: string }) => {
      const history = await clientFor(opts, ctx).history(id);
      ctx.stdout(opts.json ? JSON.stringify(history, null, 2) + '\n' : formatHistory(history));
    });
}
