import { stat } from 'node:fs/promises';
import { CliError } from './cli-error.js';
import { ExitCode } from './exit-codes.js';

/** What `buildman submit <source>` was pointed at. */
export type SubmitSource =
  | { kind: 'dir'; path: string }
  | { kind: 'archive'; path: string; mediaType: string }
  | { kind: 'url'; url: string }
  | { kind: 'git'; url: string };

const GIT_URL = /^(git@|git:\/\/|ssh:\/\/)|\.git\/?$/;
const ARCHIVE_URL = /^(https?|file):\/\//;
const TAR_FILE = /\.tar$/;
const TAR_GZ_FILE = /\.(tar\.gz|tgz)$/;

/**
 * A git remote (ends in `.git`, or `git@…`, `git://…`, `ssh://…`), an archive URL the worker
 * downloads (http, https, file), a local directory to pack and upload, or a local tar(.gz) to upload.
 */
export async function classifySource(source: string): Promise<SubmitSource> {
  if (GIT_URL.test(source)) return { kind: 'git', url: source };
  if (ARCHIVE_URL.test(source)) return { kind: 'url', url: source };

  const info = await stat(source).catch(() => undefined);
  if (info?.isDirectory()) return { kind: 'dir', path: source };
  if (info?.isFile() && TAR_GZ_FILE.test(source)) return { kind: 'archive', path: source, mediaType: 'application/gzip' };
  if (info?.isFile() && TAR_FILE.test(source)) return { kind: 'archive', path: source, mediaType: 'application/x-tar' };
  throw new CliError(
    info
      ? `${source} is a file but not a .tar, .tar.gz or .tgz archive; pass the directory that holds the Dockerfile instead`
      : `${source} is not a directory, an archive, an http(s)/file URL or a git URL; pass the directory that holds the Dockerfile`,
    ExitCode.USAGE,
  );
}
