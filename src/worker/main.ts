import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { DEFAULT_WORKER_BINARY } from '../util/package-root.js';
import { runWorker } from './run-worker.js';

export { runWorker, type WorkerOptions, type WorkerResult } from './run-worker.js';

/**
 * The worker as a process (`bin/buildman-worker.js`, the default BUILDER_BINARY_LOCATION): reads
 * process.env like quay-builder, stops the build on SIGTERM/SIGINT, exits with the result's code.
 */
export async function main(): Promise<void> {
  const stop = new AbortController();
  const onSignal = (signal: NodeJS.Signals) => {
    process.stderr.write(`buildman worker: ${signal} received, stopping the build\n`);
    stop.abort();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  const result = await runWorker(process.env, { signal: stop.signal });
  process.exitCode = result.exitCode;
  // Open gRPC channels or a stubborn child must not keep a finished worker alive.
  setTimeout(() => process.exit(result.exitCode), 2000).unref();
}

/** True when this module is the program being run, not a library import (the CLI imports `runWorker`). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    const real = realpathSync(script);
    return real === fileURLToPath(import.meta.url) || real === realpathSync(DEFAULT_WORKER_BINARY);
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  main().catch((err: unknown) => {
    process.stderr.write(`buildman worker: unexpected failure: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(70);
  });
}
