import type { BuildView } from '../api/build-service.js';
import { UnreachableError, type ApiClient } from './api-client.js';
import { formatLogEntry } from './build-format.js';
import type { CliContext } from './cli-context.js';

/** Prints a build's log as it is written and returns the build once it is final. */
export async function followBuild(client: ApiClient, id: string, ctx: CliContext): Promise<BuildView> {
  for await (const line of client.followLogs(id)) {
    if ('end' in line) return line.build;
    ctx.stdout(formatLogEntry(line.entry) + '\n');
  }
  throw new UnreachableError(
    `the log stream of build ${id} from ${client.baseUrl} ended before the build did (did the server restart?); check with \`buildman status ${id}\``,
  );
}
