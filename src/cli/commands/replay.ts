import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { parseRecording, recordingOf, type HistoryRecording } from '../../replay/history-recording.js';
import { formatReplay } from '../../replay/format-replay.js';
import { replayHistory } from '../../replay/replay-history.js';
import { replayToInspector } from '../../replay/replay-to-inspector.js';
import { DEFAULT_INSPECT_PORT, startInspectServer } from '../../inspect/inspect-server.js';
import { silentLogger } from '../../util/logger.js';
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
    .option('--inspect [port]', 'also play it to the Stately inspector protocol on ws://127.0.0.1:PORT and keep serving until interrupted', parseInspectPort)
    .option('--step-ms <ms>', 'with --inspect: pause between events, so the inspector shows each step', (v) => Number(v), 500)
    .option('--hold <seconds>', 'with --inspect: stop serving after this many seconds (default: until Ctrl-C)', (v) => Number(v))
    .addOption(serverOption())
    .action(async (idOrFile: string, opts: { until?: number; json?: boolean; server?: string; inspect?: number; stepMs: number; hold?: number }) => {
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
      if (opts.inspect !== undefined) await serveReplay(recording, opts.inspect, opts, ctx);
    });
}

async function readRecording(file: string): Promise<HistoryRecording> {
  try {
    return parseRecording(await readFile(file, 'utf8'), file);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.USAGE);
  }
}

/** Plays the recording to a local inspector stream, then keeps it up for late viewers (they get the buffered events). */
async function serveReplay(recording: HistoryRecording, port: number, opts: { until?: number; stepMs: number; hold?: number }, ctx: CliContext): Promise<void> {
  const server = await startInspectServer({ port, logger: silentLogger() });
  try {
    ctx.stdout(`inspector stream: ${server.url}?build=${recording.buildId} (open http://127.0.0.1:${server.port}/ to view it in Stately's inspector)\n`);
    const final = await replayToInspector(recording, server.feed, { until: opts.until, stepMs: opts.stepMs });
    ctx.stdout(`replayed into the inspector, ending in ${final}${opts.hold === undefined ? '; Ctrl-C to stop' : ''}\n`);
    await new Promise<void>((resolve) => {
      if (opts.hold !== undefined) setTimeout(resolve, opts.hold * 1000);
      process.once('SIGINT', () => resolve());
    });
  } finally {
    await server.close();
  }
}

function parseInspectPort(value: string | boolean): number {
  if (value === true) return DEFAULT_INSPECT_PORT;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new CliError(`--inspect takes a port number, not "${value}"`, ExitCode.USAGE);
  return n;
}

function parseStep(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new CliError(`--until takes a step number (1 or more), not "${value}"`, ExitCode.USAGE);
  return n;
}
