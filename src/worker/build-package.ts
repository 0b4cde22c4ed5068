import { createWriteStream } from 'node:fs';
import { mkdir, open, realpath, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import * as tar from 'tar';
import type { BuildPack, BuildPack_GitPackage } from '../../proto/gen/buildman.js';
import { runCommand, SpawnError, type OutputStream } from './run-command.js';
import { BuildFailure } from './worker-errors.js';

/** Where the unpacked build lives. */
export interface BuildWorkspace {
  /** The unpacked package (archive contents or git checkout). */
  packageDir: string;
  contextDir: string;
  /** Absolute path of the Dockerfile, inside `packageDir`. */
  dockerfilePath: string;
}

export interface UnpackOptions {
  /** A folder the worker owns; the package is unpacked into `<workDir>/package`. */
  workDir: string;
  env: NodeJS.ProcessEnv;
  signal: AbortSignal;
  /** Output of git, for the build log. */
  onLine: (line: string, stream: OutputStream) => void;
}

/** Fetches the build pack's source (archive URL or git) and locates context and Dockerfile. */
export async function unpackBuildPack(pack: BuildPack, opts: UnpackOptions): Promise<BuildWorkspace> {
  const packageDir = join(opts.workDir, 'package');
  // A reused BUILDMAN_WORK_DIR must not mix an earlier package into this one.
  await rm(packageDir, { recursive: true, force: true });
  await mkdir(packageDir, { recursive: true });
  if (pack.gitPackage && pack.gitPackage.url) await cloneGitPackage(pack.gitPackage, packageDir, opts);
  else if (pack.packageUrl) await fetchArchive(pack.packageUrl, packageDir, opts);
  else throw new BuildFailure('the build pack has neither a package URL nor a git package');
  return locateDockerfile(packageDir, pack.context, pack.dockerfilePath);
}

/** Resolves `context` (empty or `/` = the root) and `dockerfile_path` (relative to the context), refusing escapes. */
export async function locateDockerfile(packageDir: string, context: string, dockerfilePath: string): Promise<BuildWorkspace> {
  const root = await realpath(packageDir);
  const contextRel = context.replace(/^\/+/, '');
  const contextDir = resolve(root, contextRel);
  if (!isInside(root, contextDir)) throw new BuildFailure(`the build context ${JSON.stringify(context)} is outside the build package`);
  const dockerfileRel = dockerfilePath.replace(/^\/+/, '') || 'Dockerfile';
  const dockerfile = resolve(contextDir, dockerfileRel);
  if (!isInside(root, dockerfile)) throw new BuildFailure(`the Dockerfile path ${JSON.stringify(dockerfilePath)} is outside the build package`);

  const contextInfo = await stat(contextDir).catch(() => undefined);
  if (!contextInfo?.isDirectory()) throw new BuildFailure(`the build context ${JSON.stringify(context)} is not a folder of the build package`);
  // Symlinks in an archive could point anywhere; check where the files really are.
  const realContext = await realpath(contextDir);
  const realDockerfile = await realpath(dockerfile).catch(() => undefined);
  if (!isInside(root, realContext)) throw new BuildFailure(`the build context ${JSON.stringify(context)} is outside the build package`);
  if (!realDockerfile) throw new BuildFailure(`Missing Dockerfile: ${join(contextRel, dockerfileRel)} is not in the build package`);
  if (!isInside(root, realDockerfile)) throw new BuildFailure(`the Dockerfile path ${JSON.stringify(dockerfilePath)} is outside the build package`);
  return { packageDir: root, contextDir: realContext, dockerfilePath: realDockerfile };
}

function isInside(root: string, path: string): boolean {
  const rel = relative(root, path);
  return rel === '' || (!rel.startsWith('..' + sep) && rel !== '..' && !isAbsolute(rel));
}

async function fetchArchive(url: string, packageDir: string, opts: UnpackOptions): Promise<void> {
  let file: string;
  if (url.startsWith('file:')) file = fileURLToPath(url);
  else if (/^https?:\/\//i.test(url)) {
    file = join(opts.workDir, 'package.download');
    await download(url, file, opts.signal);
  } else throw new BuildFailure(`unsupported build package URL scheme in ${url.split(':')[0]}: (http, https and file are supported)`);

  const kind = await sniff(file);
  if (kind === 'tar') {
    try {
      // tar refuses absolute paths and `..` entries unless told otherwise; gzip is detected from the bytes.
      await tar.x({ file, cwd: packageDir, strict: true });
    } catch (err) {
      throw new BuildFailure(`the build package is not a valid tar archive: ${(err as Error).message}`);
    }
  } else if (kind === 'dockerfile') {
    // Quay accepts a bare Dockerfile upload as the whole package.
    await copyFile(file, join(packageDir, 'Dockerfile'));
  } else if (kind === 'zip') {
    throw new BuildFailure('zip build packages are not supported by this worker; upload a .tar or .tar.gz instead');
  } else throw new BuildFailure('Invalid build pack. Are you sure it is a Dockerfile or a .tar/.tar.gz archive?');
}

async function download(url: string, file: string, signal: AbortSignal): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { signal });
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    throw new BuildFailure(`cannot download the build package from ${redactUrl(url)}: ${(err as Error).cause ?? (err as Error).message}`);
  }
  if (!res.ok || !res.body) throw new BuildFailure(`cannot download the build package from ${redactUrl(url)}: HTTP ${res.status}`);
  await pipeline(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), createWriteStream(file));
}

/** Signed URLs carry credentials in their query; keep them out of logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

/** Identifies a package by its first bytes: gzip and tar magic numbers, zip, or text. */
async function sniff(file: string): Promise<'tar' | 'zip' | 'dockerfile' | 'unknown'> {
  const handle = await open(file, 'r').catch(() => {
    throw new BuildFailure(`the build package ${file} cannot be read`);
  });
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, 512, 0);
    const bytes = head.subarray(0, bytesRead);
    if (bytes[0] === 0x1f && bytes[1] === 0x8b) return 'tar'; // gzip; we only accept gzipped tars
    if (bytesRead >= 262 && bytes.subarray(257, 262).toString('latin1') === 'ustar') return 'tar';
    if (bytes.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04]))) return 'zip';
    if (bytesRead > 0 && !bytes.includes(0)) return 'dockerfile';
    return 'unknown';
  } finally {
    await handle.close();
  }
}

async function cloneGitPackage(git: BuildPack_GitPackage, packageDir: string, opts: UnpackOptions): Promise<void> {
  const env: NodeJS.ProcessEnv = { ...opts.env, GIT_TERMINAL_PROMPT: '0' };
  const keyFile = join(opts.workDir, 'git-key');
  if (git.privateKey) {
    await writeFile(keyFile, git.privateKey.endsWith('\n') ? git.privateKey : git.privateKey + '\n', { mode: 0o600 });
    // A fresh build machine knows no host keys; quay-builder does not check them either.
    env.GIT_SSH_COMMAND = `ssh -i ${keyFile} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null`;
  }
  const git_ = async (args: string[], what: string) => {
    let result;
    try {
      result = await runCommand('git', args, { env, signal: opts.signal, onLine: opts.onLine, timeoutMs: 15 * 60_000 });
    } catch (err) {
      if (err instanceof SpawnError && err.errno === 'ENOENT') {
        throw new BuildFailure('git is not installed on this worker: install it with `apt-get install git`');
      }
      throw err;
    }
    if (result.code !== 0) {
      const reason = result.stderrTail.filter((l) => l.trim()).at(-1) ?? `exit ${result.code}`;
      throw new BuildFailure(`${what}: ${reason}`);
    }
  };
  try {
    await git_(['clone', git.url, packageDir], 'Error cloning git repository');
    if (git.sha) await git_(['-C', packageDir, 'checkout', '--quiet', git.sha], `Error checking out git commit ${git.sha}`);
    await git_(['-C', packageDir, 'submodule', 'update', '--init', '--recursive'], 'Error initializing git submodules');
  } finally {
    await rm(keyFile, { force: true });
  }
}
