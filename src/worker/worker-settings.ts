/**
 * The worker is configured only by its environment, exactly like quay-builder (reference §12),
 * plus a few optional `BUILDMAN_*` variables of ours for local builds.
 */

export type RuntimeName = 'buildah' | 'podman' | 'docker';

const RUNTIMES: readonly RuntimeName[] = ['buildah', 'podman', 'docker'];
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy'] as const;

export interface WorkerSettings {
  /** `SERVER`: the manager's gRPC address, host:port. */
  server: string;
  /** `TOKEN`: the registration JWT. A secret. */
  token: string;
  /** `INSECURE=true`: plaintext gRPC. */
  insecure: boolean;
  /** `TLS_CERT_PATH`: a CA bundle for the manager's TLS certificate. */
  tlsCertPath?: string;
  /** `CONTAINER_RUNTIME`, default `docker` as quay-builder. */
  runtime: RuntimeName;
  buildUuid: string;
  registryHostname: string;
  dockerHost?: string;
  debug: boolean;
  /** Proxy variables found in the environment; they reach the runtime unchanged. */
  proxies: Record<string, string>;
  /** `BUILDAH_ISOLATION` (Quay's Kubernetes executor spells it `BULDAH_ISOLATION`; both are read). */
  buildahIsolation: string;
  /** `BUILDMAN_WORK_DIR`: scratch folder; unset means a fresh tmp dir removed afterwards. */
  workDir?: string;
  /** `BUILDMAN_IMAGE_DIR`: where OCI archives go when the build pack names no registry. */
  imageDir?: string;
  /** `BUILDMAN_STORAGE_ROOT`: private container storage for buildah/podman. */
  storageRoot?: string;
  /** `REGISTRY_INSECURE=true`: plain HTTP / unverified TLS to the registry (a registry on loopback). */
  registryInsecure: boolean;
  /** The environment handed to child processes: ours without the worker's secrets. */
  childEnv: NodeJS.ProcessEnv;
}

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
}

const isTrue = (v: string | undefined) => v !== undefined && /^(1|true|yes|on)$/i.test(v.trim());
const nonEmpty = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());

/** Reads the worker's settings; throws `SettingsError` naming the variable when one is unusable. */
export function readWorkerSettings(env: NodeJS.ProcessEnv): WorkerSettings {
  const server = nonEmpty(env.SERVER);
  if (!server) throw new SettingsError('SERVER is not set: it must hold the build manager gRPC address (host:port)');

  const runtimeRaw = (nonEmpty(env.CONTAINER_RUNTIME) ?? 'docker').toLowerCase();
  if (!RUNTIMES.includes(runtimeRaw as RuntimeName)) {
    throw new SettingsError(`CONTAINER_RUNTIME=${runtimeRaw} is not supported: use one of ${RUNTIMES.join(', ')}`);
  }

  const proxies: Record<string, string> = {};
  for (const name of PROXY_VARS) {
    const value = env[name];
    if (value !== undefined && value !== '') proxies[name] = value;
  }

  // Children must never see the registration token: a build step could print its environment.
  const childEnv: NodeJS.ProcessEnv = { ...env };
  delete childEnv.TOKEN;

  return {
    server,
    token: env.TOKEN ?? '',
    insecure: isTrue(env.INSECURE),
    tlsCertPath: nonEmpty(env.TLS_CERT_PATH),
    runtime: runtimeRaw as RuntimeName,
    buildUuid: env.BUILD_UUID ?? '',
    registryHostname: env.REGISTRY_HOSTNAME ?? '',
    dockerHost: nonEmpty(env.DOCKER_HOST),
    debug: isTrue(env.DEBUG),
    proxies,
    buildahIsolation: nonEmpty(env.BUILDAH_ISOLATION) ?? nonEmpty(env.BULDAH_ISOLATION) ?? 'chroot',
    workDir: nonEmpty(env.BUILDMAN_WORK_DIR),
    imageDir: nonEmpty(env.BUILDMAN_IMAGE_DIR),
    storageRoot: nonEmpty(env.BUILDMAN_STORAGE_ROOT),
    registryInsecure: isTrue(env.REGISTRY_INSECURE),
    childEnv,
  };
}
