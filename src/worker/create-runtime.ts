import { BuildahRuntime } from './buildah-runtime.js';
import type { ContainerRuntime } from './container-runtime.js';
import { DockerRuntime } from './docker-runtime.js';
import type { WorkerSettings } from './worker-settings.js';

/** Picks the runtime `CONTAINER_RUNTIME` names. Auth files go to `secretsDir`, removed with the work dir. */
export function createRuntime(settings: WorkerSettings, secretsDir: string): ContainerRuntime {
  return settings.runtime === 'docker'
    ? new DockerRuntime(settings, secretsDir)
    : new BuildahRuntime(settings.runtime, settings, secretsDir);
}
