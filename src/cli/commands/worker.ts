import type { Command } from 'commander';
import type { CliContext } from '../cli-context.js';

export function registerWorkerCommand(program: Command, ctx: CliContext): void {
  program
    .command('worker')
    .description('run the reference build worker, configured like quay-builder by TOKEN, SERVER, BUILD_UUID, … in the environment')
    .action(async () => {
      const { runWorker } = await import('../../worker/main.js');
      // A signal stops the build (the worker reports it) instead of killing it mid-push.
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once('SIGTERM', onSignal);
      process.once('SIGINT', onSignal);
      try {
        ctx.exitCode = (await runWorker(ctx.env, { signal: stop.signal })).exitCode;
      } finally {
        process.off('SIGTERM', onSignal);
        process.off('SIGINT', onSignal);
      }
    });
}
