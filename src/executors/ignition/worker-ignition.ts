import type { ExecutorCommonConfig } from '../../config/config-types.js';
import { PermanentError } from '../../errors/buildman-error.js';
import { fromDataUrl, toDataUrl } from './data-url.js';
import type { IgnitionConfig, IgnitionFile, IgnitionUnit } from './ignition-types.js';
import {
  disableAwsMetadataUnit,
  DISABLE_AWS_METADATA_SCRIPT,
  DISABLE_AWS_METADATA_SCRIPT_PATH,
  machineLifetimeUnit,
  quayBuilderUnit,
  type HostRuntime,
} from './worker-units.js';

export type { IgnitionConfig } from './ignition-types.js';

/** What a VM worker (EC2, the Kubernetes QEMU pod) needs to boot into a running quay-builder. */
export interface WorkerIgnitionOptions {
  buildId: string;
  /** The registration token. A secret: it ends up in the user data, so never log the result. */
  token: string;
  /** gRPC address host:port the worker dials */
  server: string;
  registryHostname?: string;
  config: ExecutorCommonConfig;
  /** worker runs plaintext gRPC */
  insecure?: boolean;
}

export const OVERRIDES_PATH = '/root/overrides.list';
export const CA_CERT_PATH = '/etc/pki/ca-trust-source/anchors/ssl.cert';
/** Root-only file fed to `login --password-stdin`. */
export const REGISTRY_PASSWORD_PATH = '/root/registry-password';
export const DEFAULT_WORKER_IMAGE = 'quay.io/coreos/registry-build-worker';
export const DEFAULT_MAX_LIFETIME_S = 10800;

const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY'] as const;
const MODE_0644 = 0o644;
const MODE_0600 = 0o600;
const MODE_0755 = 0o755;

/**
 * The Ignition 3.0.0 config that boots a Fedora CoreOS machine into one quay-builder run (reference §5.1).
 * Differs from Quay knowingly: every proxy variable that is set reaches the worker (Q10), and the
 * registry password is read from a root-only file rather than the login command line.
 */
export function workerIgnition(opts: WorkerIgnitionOptions): IgnitionConfig {
  const { config } = opts;
  if (!config.WORKER_TAG) {
    throw new PermanentError(
      `executor ${config.NAME}: WORKER_TAG is required to boot a worker machine; set it to the tag of ${config.WORKER_IMAGE || DEFAULT_WORKER_IMAGE} to run`,
      'INVALID_CONFIG',
    );
  }
  const runtime: HostRuntime = config.CONTAINER_RUNTIME === 'podman' ? 'podman' : 'docker';
  const image = `${config.WORKER_IMAGE || DEFAULT_WORKER_IMAGE}:${config.WORKER_TAG}`;
  const maxLifetimeS = config.MAX_LIFETIME_S ?? DEFAULT_MAX_LIFETIME_S;
  const login =
    config.QUAY_USERNAME && config.QUAY_PASSWORD
      ? { registry: registryOf(image), username: config.QUAY_USERNAME, passwordFile: REGISTRY_PASSWORD_PATH }
      : undefined;

  const files: IgnitionFile[] = [
    file('/etc/zincati/config.d/90-disable-auto-updates.toml', '[updates]\nenabled = false\n', MODE_0644),
    file('/etc/hostname', opts.buildId, MODE_0644),
    file(OVERRIDES_PATH, overridesList(workerEnv(opts)), MODE_0600),
    file(DISABLE_AWS_METADATA_SCRIPT_PATH, DISABLE_AWS_METADATA_SCRIPT, MODE_0755),
  ];
  if (login) files.push(file(REGISTRY_PASSWORD_PATH, config.QUAY_PASSWORD!, MODE_0600));
  if (config.CA_CERT) {
    files.push(file(CA_CERT_PATH, config.CA_CERT, MODE_0644));
    // The host runtime pulls from the registry too; `.crt` files in certs.d are trusted CAs.
    if (opts.registryHostname) {
      const certsDir = runtime === 'podman' ? '/etc/containers/certs.d' : '/etc/docker/certs.d';
      files.push(file(`${certsDir}/${opts.registryHostname}/client.crt`, config.CA_CERT, MODE_0644));
    }
  }
  if (runtime === 'podman') files.push(file('/etc/containers/registries.conf', REGISTRIES_CONF, MODE_0644));

  const units: IgnitionUnit[] = [
    { name: 'quay-builder.service', enabled: true, contents: quayBuilderUnit({ runtime, image, login, envFile: OVERRIDES_PATH, maxLifetimeS, debug: config.DEBUG }) },
    { name: 'machine-lifetime.service', enabled: true, contents: machineLifetimeUnit(maxLifetimeS) },
    { name: 'disable-aws-metadata.service', enabled: true, contents: disableAwsMetadataUnit() },
    { name: 'systemd-journal-gatewayd.socket', enabled: true },
  ];
  if (runtime === 'podman') units.push({ name: 'podman.socket', enabled: true });

  return {
    ignition: { version: '3.0.0' },
    passwd: { users: [{ name: 'core', groups: ['sudo'], sshAuthorizedKeys: [...(config.SSH_AUTHORIZED_KEYS ?? [])] }] },
    storage: { files },
    systemd: { units },
  };
}

/** The user data string. Contains the token and any registry password: never log it. */
export function workerIgnitionJson(opts: WorkerIgnitionOptions): string {
  return JSON.stringify(workerIgnition(opts));
}

/** Reads `/root/overrides.list` back out of an ignition config: the worker's environment, for emulators and tests. */
export function workerEnvFromIgnition(ignition: string | IgnitionConfig): Record<string, string> {
  const parsed: IgnitionConfig = typeof ignition === 'string' ? JSON.parse(ignition) : ignition;
  const overrides = parsed.storage?.files?.find((f) => f.path === OVERRIDES_PATH);
  if (!overrides) throw new Error(`ignition config has no ${OVERRIDES_PATH}`);
  const env: Record<string, string> = {};
  for (const line of fromDataUrl(overrides.contents.source).split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

/** The worker container's environment, in overrides.list order. */
function workerEnv(opts: WorkerIgnitionOptions): Array<[string, string]> {
  const { config } = opts;
  const env: Array<[string, string]> = [
    ['TOKEN', opts.token],
    ['SERVER', opts.server],
    ['BUILD_UUID', opts.buildId],
  ];
  if (opts.registryHostname) env.push(['REGISTRY_HOSTNAME', opts.registryHostname]);
  if (config.CONTAINER_RUNTIME) env.push(['CONTAINER_RUNTIME', config.CONTAINER_RUNTIME]);
  if (opts.insecure !== undefined) env.push(['INSECURE', opts.insecure ? 'true' : 'false']);
  if (config.DEBUG) env.push(['DEBUG', 'true']);
  for (const name of PROXY_VARS) {
    const value = config[name];
    if (value) env.push([name, value]);
  }
  // The worker's Go TLS stack still accepts certificates that only carry a CN (Quay sets this too).
  env.push(['GODEBUG', 'x509ignoreCN=0']);
  return env;
}

/** docker/podman `--env-file` format: one KEY=value a line, no quoting, so no line breaks allowed. */
function overridesList(env: Array<[string, string]>): string {
  for (const [name, value] of env) {
    if (/[\r\n]/.test(value)) {
      throw new PermanentError(`worker variable ${name} contains a line break, which an env file cannot carry; remove it from the config`, 'INVALID_CONFIG');
    }
  }
  return env.map(([name, value]) => `${name}=${value}\n`).join('');
}

function file(path: string, text: string, mode: number): IgnitionFile {
  return { path, overwrite: true, mode, contents: { source: toDataUrl(text) } };
}

/** The registry host of an image reference; Docker Hub when the first component is not a host. */
export function registryOf(image: string): string {
  const slash = image.indexOf('/');
  if (slash < 0) return 'docker.io';
  const first = image.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost' ? first : 'docker.io';
}

/** Lets podman resolve short names the way docker does, as Quay configures it. */
const REGISTRIES_CONF = [
  'unqualified-search-registries = ["registry.fedoraproject.org", "registry.access.redhat.com", "docker.io", "quay.io"]',
  'short-name-mode = "permissive"',
  '',
].join('\n');
