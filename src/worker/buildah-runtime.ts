import { join } from 'node:path';
import {
  notInstalledMessage,
  runTool,
  writeAuthFile,
  type BuildSpec,
  type ContainerRuntime,
  type RegistryAuth,
  type RuntimeIo,
} from './container-runtime.js';
import { findExecutable } from './run-command.js';
import { BuildFailure } from './worker-errors.js';
import type { WorkerSettings } from './worker-settings.js';

/**
 * buildah and podman: the same flags, daemonless. Builds use chroot isolation by default because
 * OCI isolation needs a working cgroup setup that build machines often lack (real-build.md).
 */
export class BuildahRuntime implements ContainerRuntime {
  constructor(
    readonly name: 'buildah' | 'podman',
    private readonly settings: WorkerSettings,
    private readonly secretsDir: string,
  ) {}

  async check(): Promise<void> {
    if (!(await findExecutable(this.name, this.settings.childEnv.PATH))) throw new BuildFailure(notInstalledMessage(this.name));
  }

  async build(spec: BuildSpec, io: RuntimeIo): Promise<void> {
    const args = [...this.storageFlags(), this.name === 'buildah' ? 'bud' : 'build', '--isolation', this.settings.buildahIsolation];
    // Docker's image format keeps HEALTHCHECK/SHELL/ONBUILD, which the OCI format drops.
    args.push('--format', 'docker', ...this.tlsFlags());
    if (spec.pullAuth) args.push('--authfile', await writeAuthFile(join(this.secretsDir, 'pull-auth.json'), spec.pullAuth));
    for (const image of spec.images) args.push('-t', image);
    args.push('-f', spec.dockerfile, spec.contextDir);
    await runTool(this.name, args, `${this.name} build`, this.settings.childEnv, io);
  }

  async push(image: string, auth: RegistryAuth | undefined, io: RuntimeIo): Promise<void> {
    const args = [...this.storageFlags(), 'push', ...this.tlsFlags()];
    if (auth) args.push('--authfile', await writeAuthFile(join(this.secretsDir, 'push-auth.json'), auth));
    args.push(image, `docker://${image}`);
    await runTool(this.name, args, `${this.name} push ${image}`, this.settings.childEnv, io);
  }

  async saveArchive(image: string, path: string, refName: string, io: RuntimeIo): Promise<void> {
    const args = [...this.storageFlags(), 'push', image, `oci-archive:${path}:${refName}`];
    await runTool(this.name, args, `${this.name} push ${image} to ${path}`, this.settings.childEnv, io);
  }

  async remove(images: string[], io: RuntimeIo): Promise<void> {
    await runTool(this.name, [...this.storageFlags(), 'rmi', '-f', ...images], `${this.name} rmi`, this.settings.childEnv, io).catch(() => {});
  }

  /** A private store (BUILDMAN_STORAGE_ROOT) keeps local builds out of /var/lib/containers; vfs works everywhere. */
  private storageFlags(): string[] {
    const root = this.settings.storageRoot;
    return root ? ['--root', join(root, 'root'), '--runroot', join(root, 'run'), '--storage-driver', 'vfs'] : [];
  }

  private tlsFlags(): string[] {
    return this.settings.registryInsecure ? ['--tls-verify=false'] : [];
  }
}
