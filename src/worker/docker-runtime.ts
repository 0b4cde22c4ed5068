import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  INSTALL_HINTS,
  notInstalledMessage,
  runTool,
  writeAuthFile,
  type BuildSpec,
  type ContainerRuntime,
  type RegistryAuth,
  type RuntimeIo,
} from './container-runtime.js';
import { findExecutable, runCommand } from './run-command.js';
import { BuildFailure } from './worker-errors.js';
import type { WorkerSettings } from './worker-settings.js';

/**
 * The Docker CLI against the engine at DOCKER_HOST (quay-builder's default runtime). Credentials go
 * through a private `--config` folder, never the command line.
 */
export class DockerRuntime implements ContainerRuntime {
  readonly name = 'docker' as const;
  private readonly env: NodeJS.ProcessEnv;

  constructor(
    private readonly settings: WorkerSettings,
    private readonly secretsDir: string,
  ) {
    // The classic builder prints `Step N/M : …`, which Quay's log view recognises; BuildKit does not.
    this.env = { ...settings.childEnv, DOCKER_BUILDKIT: '0' };
  }

  async check(signal: AbortSignal): Promise<void> {
    if (!(await findExecutable('docker', this.env.PATH))) throw new BuildFailure(notInstalledMessage('docker'));
    const result = await runCommand('docker', ['version', '--format', '{{.Server.Version}}'], { env: this.env, signal, timeoutMs: 10_000 });
    if (result.code !== 0) {
      const host = this.settings.dockerHost ?? 'unix:///var/run/docker.sock';
      const why = result.stderrTail.filter((l) => l.trim()).at(-1) ?? 'no answer';
      throw new BuildFailure(`CONTAINER_RUNTIME=docker, but no Docker engine answers at ${host} (${why}): ${INSTALL_HINTS.docker}`);
    }
  }

  async build(spec: BuildSpec, io: RuntimeIo): Promise<void> {
    const args = [...(await this.configFlags('pull', spec.pullAuth)), 'build'];
    // `--build-arg NAME` without a value passes the variable through from this environment.
    for (const name of Object.keys(this.settings.proxies)) args.push('--build-arg', name);
    for (const image of spec.images) args.push('-t', image);
    args.push('-f', spec.dockerfile, spec.contextDir);
    await runTool('docker', args, 'docker build', this.env, io);
  }

  async push(image: string, auth: RegistryAuth | undefined, io: RuntimeIo): Promise<void> {
    await runTool('docker', [...(await this.configFlags('push', auth)), 'push', image], `docker push ${image}`, this.env, io);
  }

  async saveArchive(image: string, path: string, _refName: string, io: RuntimeIo): Promise<void> {
    // Docker 25+ writes an OCI image layout in `docker save`.
    await runTool('docker', ['save', '-o', path, image], `docker save ${image}`, this.env, io);
  }

  async remove(images: string[], io: RuntimeIo): Promise<void> {
    await runTool('docker', ['rmi', '-f', ...images], 'docker rmi', this.env, io).catch(() => {});
  }

  private async configFlags(purpose: string, auth: RegistryAuth | undefined): Promise<string[]> {
    if (!auth) return [];
    const dir = join(this.secretsDir, `docker-${purpose}`);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeAuthFile(join(dir, 'config.json'), auth);
    return ['--config', dir];
  }
}
