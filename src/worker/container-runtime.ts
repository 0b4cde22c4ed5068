import { writeFile } from 'node:fs/promises';
import { runCommand, SpawnError, type OutputStream, type RunResult } from './run-command.js';
import { BuildFailure } from './worker-errors.js';
import type { RuntimeName, WorkerSettings } from './worker-settings.js';

/** Credentials for one registry host. */
export interface RegistryAuth {
  registry: string;
  username: string;
  password: string;
}

export interface BuildSpec {
  contextDir: string;
  /** Absolute path of the Dockerfile. */
  dockerfile: string;
  /** Every name the image gets (one per tag). */
  images: string[];
  /** Credentials for pulling the base image, only when it lives in the build's own registry. */
  pullAuth?: RegistryAuth;
}

export interface RuntimeIo {
  signal: AbortSignal;
  onLine: (line: string, stream: OutputStream) => void;
}

/** The container tool the worker drives. Every failure is a `BuildFailure` with a readable reason. */
export interface ContainerRuntime {
  readonly name: RuntimeName;
  /** Fails fast, naming what to install, when the runtime cannot work on this machine. */
  check(signal: AbortSignal): Promise<void>;
  build(spec: BuildSpec, io: RuntimeIo): Promise<void>;
  push(image: string, auth: RegistryAuth | undefined, io: RuntimeIo): Promise<void>;
  /** Writes the image as an OCI archive whose reference annotation is `refName`. */
  saveArchive(image: string, path: string, refName: string, io: RuntimeIo): Promise<void>;
  /** Best effort: frees the storage the build used. */
  remove(images: string[], io: RuntimeIo): Promise<void>;
}

export const INSTALL_HINTS: Record<RuntimeName, string> = {
  buildah: 'install it with `apt-get install buildah` (Debian/Ubuntu) or `dnf install buildah` (Fedora/RHEL)',
  podman: 'install it with `apt-get install podman` (Debian/Ubuntu) or `dnf install podman` (Fedora/RHEL)',
  docker:
    'install the Docker engine (`apt-get install docker.io`) and start dockerd, or set CONTAINER_RUNTIME=buildah (`apt-get install buildah`)',
};

export function notInstalledMessage(name: RuntimeName): string {
  return `CONTAINER_RUNTIME=${name}, but ${name} is not installed on this worker (not found in PATH): ${INSTALL_HINTS[name]}`;
}

/** The reason a failed tool run gives: its last `Error:` line, else its last stderr line. */
export function failureReason(result: RunResult): string {
  const lines = result.stderrTail.map((l) => l.trim()).filter(Boolean);
  const errorLine = [...lines].reverse().find((l) => /^error:/i.test(l));
  const reason = (errorLine ?? lines.at(-1) ?? '').replace(/^error:\s*/i, '');
  const exit = result.timedOut ? 'timed out' : result.code !== null ? `exit ${result.code}` : `signal ${result.signal}`;
  return reason ? `${reason} (${exit})` : `no error output (${exit})`;
}

/** Runs one runtime command; a non-zero exit becomes a `BuildFailure` naming `what`. */
export async function runTool(
  runtime: RuntimeName,
  args: string[],
  what: string,
  env: NodeJS.ProcessEnv,
  io: RuntimeIo,
): Promise<RunResult> {
  let result: RunResult;
  try {
    result = await runCommand(runtime, args, { env, signal: io.signal, onLine: io.onLine });
  } catch (err) {
    if (err instanceof SpawnError && err.errno === 'ENOENT') throw new BuildFailure(notInstalledMessage(runtime));
    throw err;
  }
  if (result.code !== 0) throw new BuildFailure(`${what} failed: ${failureReason(result)}`);
  return result;
}

/** Writes a Docker/containers auth file (same `auths` format for both), readable by its owner only. */
export async function writeAuthFile(path: string, auth: RegistryAuth): Promise<string> {
  const encoded = Buffer.from(`${auth.username}:${auth.password}`).toString('base64');
  await writeFile(path, JSON.stringify({ auths: { [auth.registry]: { auth: encoded } } }), { mode: 0o600 });
  return path;
}
