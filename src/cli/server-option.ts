import { Option } from 'commander';
import { ApiClient, DEFAULT_SERVER_URL } from './api-client.js';
import type { CliContext } from './cli-context.js';

/** `--server URL`, shared by every command that talks to a running buildman. */
export function serverOption(): Option {
  return new Option('--server <url>', `buildman HTTP API (default: $BUILDMAN_URL, else ${DEFAULT_SERVER_URL})`);
}

/** The client for `--server`, else `BUILDMAN_URL`, else the default address. */
export function clientFor(opts: { server?: string }, ctx: CliContext): ApiClient {
  return new ApiClient(opts.server ?? (ctx.env.BUILDMAN_URL || DEFAULT_SERVER_URL));
}
