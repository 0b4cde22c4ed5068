import { type Command, InvalidArgumentError, Option } from 'commander';
import type { CliContext } from '../cli-context.js';
import { CliError } from '../cli-error.js';
import { configFailure, unknownKeyWarnings } from '../config-errors.js';
import { ExitCode } from '../exit-codes.js';

interface ServeOptions {
  config?: string;
  grpcPort?: number;
  httpPort?: number;
  dataDir?: string;
  logLevel?: string;
  /** `--inspect` alone is `true`: the default port. */
  inspect?: number | true;
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

export function registerServeCommand(program: Command, ctx: CliContext): void {
  program
    .command('serve')
    .description('run the build manager: the gRPC worker protocol and the HTTP API')
    .option('-c, --config <file>', 'Quay-style config.yaml (default: the embedded local setup)')
    .option('--grpc-port <n>', 'gRPC port for workers (0 picks a free one)', parsePort)
    .option('--http-port <n>', 'HTTP API port (0 picks a free one)', parsePort)
    .option('--data-dir <dir>', 'where keys and uploaded contexts are kept')
    .option('--inspect [port]', 'stream live actor events (Stately inspector protocol) over a WebSocket on 127.0.0.1 (default port 4242)', parsePort)
    .addOption(new Option('--log-level <level>', 'log level (logs go to stderr)').choices(LOG_LEVELS))
    .action((opts: ServeOptions) => serve(opts, ctx));
}

async function serve(opts: ServeOptions, ctx: CliContext): Promise<void> {
  // Loaded here, not at the top: `buildman status` should not load the whole manager.
  const { loadConfig } = await import('../../config/load-config.js');
  const { describeConfig } = await import('../../config/describe-config.js');
  const { startManager } = await import('../../runtime/start-manager.js');
  const { startHttpServer } = await import('../../api/http-server.js');
  const { createLogger } = await import('../../util/logger.js');

  const config = await loadConfig({
    file: opts.config,
    overrides: { grpcPort: opts.grpcPort, httpPort: opts.httpPort, dataDir: opts.dataDir },
  }).catch((err: unknown) => {
    throw configFailure(err);
  });
  if (!config.FEATURE_BUILD_SUPPORT) {
    throw new CliError(
      `FEATURE_BUILD_SUPPORT is false in ${opts.config ?? 'the config'}, so builds are turned off and there is nothing to serve; set FEATURE_BUILD_SUPPORT: true to run the build manager`,
      ExitCode.USAGE,
    );
  }
  ctx.stderr(unknownKeyWarnings(config.unknownKeys, opts.config));

  const logger = createLogger({ level: opts.logLevel, secrets: config.secrets });
  const { DEFAULT_INSPECT_PORT } = await import('../../inspect/inspect-server.js');
  const inspectPort = opts.inspect === true ? DEFAULT_INSPECT_PORT : opts.inspect;
  const manager = await startManager(config, { logger, inspectPort });
  const { httpHost, httpPort } = config.server;
  let http: Awaited<ReturnType<typeof startHttpServer>>;
  try {
    http = await startHttpServer(manager.service, { host: httpHost, port: httpPort, logger });
  } catch (err) {
    await manager.stop();
    if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') {
      throw new CliError(`cannot serve HTTP on ${httpHost}:${httpPort}: the address is in use (another buildman?); pick another port with --http-port`, ExitCode.USAGE);
    }
    throw err;
  }

  ctx.stdout(`gRPC listening on ${manager.grpcAddress}\n`);
  ctx.stdout(`HTTP API on ${http.url}\n`);
  ctx.stdout(`Status page on ${http.url}/\n`);
  if (manager.inspectPort !== undefined) ctx.stdout(`Live inspection on ws://127.0.0.1:${manager.inspectPort} (?build=<id> for one build)\n`);
  ctx.stdout(describeConfig(config, { source: opts.config ?? 'embedded default' }).trimEnd() + '\n');

  const signal = await nextSignal();
  // A second signal means "now": skip the orderly shutdown.
  const hurry = () => process.exit(ExitCode.FAILED);
  process.once('SIGTERM', hurry);
  process.once('SIGINT', hurry);
  try {
    logger.info({ signal }, 'shutting down');
    await http.close();
    await manager.stop();
    logger.flush();
  } finally {
    process.off('SIGTERM', hurry);
    process.off('SIGINT', hurry);
  }
}

function nextSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (signal: NodeJS.Signals) => {
      process.off('SIGTERM', on);
      process.off('SIGINT', on);
      resolve(signal);
    };
    process.on('SIGTERM', on);
    process.on('SIGINT', on);
  });
}

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('expected a port number from 0 to 65535.');
  return port;
}
