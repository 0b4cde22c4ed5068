import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseRecording, recordingOf, type HistoryRecording } from '../../replay/history-recording.js';
import { formatReplay } from '../../replay/format-replay.js';
import { replayHistory } from '../../replay/replay-history.js';
import type { CliContext } from '../cli-context.js';
import { CliError } from '../cli-error.js';
import { ExitCode } from '../exit-codes.js';
import { clientFor, serverOption } from '../server-option.js';

export function registerReplayCommand(program: Command, ctx: CliContext): void {
  program
    .command('replay')
    .description(
      "re-run a build's persisted history through the statechart with no side effects: a timeline of events, states and what the actor would have done, checked against the recorded states (exit 1 if it diverges)",
    )
    .argument('<id|file>', 'build id (read from the server), or a file written by `buildman history ID --export FILE`')
    .option('--until <n>', 'stop after step N', parseStep)
    .option('--json', 'print the replay report as JSON')
    .addOption(serverOption())
    .action(async (idOrFile: string, opts: { until?: number; json?: boolean; server?: string }) => {
      if (!existsSync(idOrFile) && /[/\\]|\.json$/.test(idOrFile)) throw new CliError(`no such file: ${idOrFile}`, ExitCode.USAGE);
      const recording = existsSync(idOrFile) ? await readRecording(idOrFile) : recordingOf(idOrFile, await clientFor(opts, ctx).history(idOrFile));
      if (recording.entries.length === 0) throw new CliError(`build ${recording.buildId} has no recorded history to replay`, ExitCode.NOT_FOUND);
      if (!recording.input) {
        throw new CliError(
          `the history of build ${recording.buildId} does not start with its creation (xstate.init), so the input to replay from is unknown`,
          ExitCode.FAILED,
        );
      }
      const report = replayHistory(recording.entries, { until: opts.until, input: recording.input });
      ctx.stdout(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatReplay(report, recording.entries.length));
      if (report.diverged) ctx.exitCode = ExitCode.FAILED;
    });
}

async function readRecording(file: string): Promise<HistoryRecording> {
  try {
    return parseRecording(await readFile(file, 'utf8'), file);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.USAGE);
  }
}

function parseStep(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--until takes a step number (1 or more), not "${value}"`, ExitCode.USAGE);
  return n;
}
