import { createReadStream } from 'node:fs';
import type { Command } from 'commander';
import { REPOSITORY_PATTERN } from '../../api/api-schemas.js';
import type { BuildView } from '../../api/build-service.js';
import type { CliContext } from '../cli-context.js';
import { CliError } from '../cli-error.js';
import { ExitCode } from '../exit-codes.js';
import { followBuild } from '../follow-build.js';
import { packContext } from '../pack-context.js';
import { clientFor, serverOption } from '../server-option.js';
import { classifySource } from '../submit-source.js';

interface SubmitOptions {
  repository: string;
  tag?: string[];
  dockerfile?: string;
  context?: string;
  gitSha?: string;
  server?: string;
  wait?: boolean;
}

export function registerSubmitCommand(program: Command, ctx: CliContext): void {
  program
    .command('submit')
    .description('submit a build from a directory (packed and uploaded), an archive URL, or a git URL; prints the build id')
    .argument('<source>', 'a directory, a .tar/.tar.gz file, an http(s)/file URL of an archive, or a git URL')
    .requiredOption('-r, --repository <ns/name>', 'repository to push to, e.g. acme/web')
    .option('-t, --tag <tag>', 'tag to push (repeatable; default latest)', (tag: string, tags: string[] | undefined) => [...(tags ?? []), tag])
    .option('-f, --dockerfile <path>', 'Dockerfile path inside the context (default Dockerfile)')
    .option('--context <dir>', 'context directory inside the source (default /)')
    .option('--git-sha <sha>', 'commit to build, for a git URL (default HEAD)')
    .option('-w, --wait', 'follow the log; exit 0 only if the build completes')
    .addOption(serverOption())
    .action(async (sourceArg: string, opts: SubmitOptions) => {
      if (!new RegExp(REPOSITORY_PATTERN).test(opts.repository)) {
        throw new CliError(
          `--repository must be namespace/name in lowercase letters, digits, ".", "_" or "-" (e.g. acme/web), not "${opts.repository}"`,
          ExitCode.USAGE,
        );
      }
      const source = await classifySource(sourceArg);
      if (opts.gitSha && source.kind !== 'git') {
        throw new CliError(`--git-sha only applies to a git URL, and ${sourceArg} is not one`, ExitCode.USAGE);
      }

      const client = clientFor(opts, ctx);
      const common = {
        repository: opts.repository,
        tags: opts.tag,
        dockerfile_path: opts.dockerfile,
        context: opts.context,
      };
      let build: BuildView;
      switch (source.kind) {
        case 'dir':
          build = await client.submitUpload(packContext(source.path), 'application/gzip', common);
          break;
        case 'archive':
          build = await client.submitUpload(createReadStream(source.path), source.mediaType, common);
          break;
        case 'url':
          build = await client.submit({ ...common, archive_url: source.url });
          break;
        case 'git':
          build = await client.submit({ ...common, git: { url: source.url, sha: opts.gitSha ?? 'HEAD' } });
          break;
      }
      // The id alone on the first line, so scripts can capture it.
      ctx.stdout(`${build.id}\n`);
      if (!opts.wait) {
        ctx.stderr(`follow it with: buildman logs ${build.id} --follow\n`);
        return;
      }

      const final = await followBuild(client, build.id, ctx);
      if (final.phase !== 'complete') {
        throw new CliError(`build ${final.id} ended in phase ${final.phase}${final.reason ? `: ${final.reason}` : ''}`, ExitCode.FAILED);
      }
    });
}
