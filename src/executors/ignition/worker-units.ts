/**
 * The systemd units of a worker machine (reference §5.1). Each returns the unit file text; the
 * ExecStart lines are what tests pin, since they are the worker's real command line.
 */

/** Which runtime runs the worker container on the machine. Quay's `buildah` runs under docker too. */
export type HostRuntime = 'docker' | 'podman';

export interface QuayBuilderUnitOptions {
  runtime: HostRuntime;
  /** `<WORKER_IMAGE>:<WORKER_TAG>`. */
  image: string;
  /** Registry host to log in to before pulling, when the config has QUAY_USERNAME/QUAY_PASSWORD. */
  login?: { registry: string; username: string; passwordFile: string };
  envFile: string;
  maxLifetimeS: number;
  /** DEBUG keeps the machine up after the build, for someone to ssh in. */
  debug: boolean;
}

/** Where the runtime's API socket lives on Fedora CoreOS. */
const SOCKETS: Record<HostRuntime, string> = {
  docker: '/var/run/docker.sock',
  podman: '/var/run/podman/podman.sock',
};

const BINARIES: Record<HostRuntime, string> = {
  docker: '/usr/bin/docker',
  podman: '/usr/bin/podman',
};

/** Quay keeps a failed machine up this long so its journal can still be read, then powers off. */
export const POWEROFF_DELAY_S = 120;
export const STOP_TIMEOUT_S = 2000;

/** The ExecStart of quay-builder.service: the worker container, privileged, with the CA dir at /certs. */
export function quayBuilderExecStart(opts: Pick<QuayBuilderUnitOptions, 'runtime' | 'image' | 'envFile'>): string {
  const socket = SOCKETS[opts.runtime];
  const args = [BINARIES[opts.runtime], 'run', '--user', '0', '--rm', '--privileged', '--env-file', opts.envFile];
  if (opts.runtime === 'docker') args.push('--net=host');
  else args.push('-e', 'CONTAINER_RUNTIME=podman', '-e', 'DOCKER_HOST=unix:/var/run/podman/podman.sock');
  args.push('-v', `${socket}:${socket}`, '-v', '/etc/pki/ca-trust-source/anchors:/certs', opts.image);
  return args.map(execArg).join(' ');
}

/**
 * The login before the pull. The password comes on stdin from a root-only file (the unit's
 * StandardInput), not `-p`: that keeps it off the process list and out of the world-readable unit.
 */
export function quayBuilderExecStartPre(runtime: HostRuntime, login: { registry: string; username: string }): string {
  return [BINARIES[runtime], 'login', '--username', login.username, '--password-stdin', login.registry].map(execArg).join(' ');
}

export const POWEROFF_AFTER_BUILD = `/bin/sh -c "/bin/sleep ${POWEROFF_DELAY_S}; /usr/bin/systemctl --no-block poweroff"`;

export function quayBuilderUnit(opts: QuayBuilderUnitOptions): string {
  const runtimeUnit = opts.runtime === 'docker' ? 'docker.service' : 'podman.socket';
  const lines = [
    '[Unit]',
    'Description=Quay build worker',
    'Wants=network-online.target',
    `After=network-online.target ${runtimeUnit} disable-aws-metadata.service`,
    `Requires=${runtimeUnit}`,
    '',
    '[Service]',
    'Type=oneshot',
    `TimeoutStartSec=${opts.maxLifetimeS}`,
    `TimeoutStopSec=${STOP_TIMEOUT_S}`,
  ];
  if (opts.login) {
    lines.push(`StandardInput=file:${opts.login.passwordFile}`);
    lines.push(`ExecStartPre=${quayBuilderExecStartPre(opts.runtime, opts.login)}`);
  }
  lines.push(`ExecStart=${quayBuilderExecStart(opts)}`);
  if (!opts.debug) lines.push(`ExecStopPost=${POWEROFF_AFTER_BUILD}`);
  lines.push('', '[Install]', 'WantedBy=multi-user.target', '');
  return lines.join('\n');
}

/** A hard cap on the machine's life, whatever the worker does: EC2 terminates it on poweroff. */
export function machineLifetimeUnit(maxLifetimeS: number): string {
  return [
    '[Unit]',
    'Description=Power off the build machine after its maximum lifetime',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${machineLifetimeExecStart(maxLifetimeS)}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

export function machineLifetimeExecStart(maxLifetimeS: number): string {
  return `/bin/sh -c "/bin/sleep ${maxLifetimeS}; /usr/bin/systemctl --no-block poweroff"`;
}

export const DISABLE_AWS_METADATA_SCRIPT_PATH = '/usr/local/bin/disable-aws-metadata.sh';

/**
 * Builds run arbitrary Dockerfiles: they must not reach the instance metadata service (and the
 * instance's credentials). PREROUTING catches build containers on a bridge, OUTPUT the host-network worker.
 */
export const DISABLE_AWS_METADATA_SCRIPT = [
  '#!/bin/sh',
  'set -e',
  'iptables -t nat -I PREROUTING -p tcp -d 169.254.169.254 --dport 80 -j DNAT --to-destination 1.1.1.1',
  'iptables -t nat -I OUTPUT -p tcp -d 169.254.169.254 --dport 80 -j DNAT --to-destination 1.1.1.1',
  '',
].join('\n');

export function disableAwsMetadataUnit(): string {
  return [
    '[Unit]',
    'Description=Keep builds away from the cloud instance metadata service',
    'Before=quay-builder.service',
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    `ExecStart=${DISABLE_AWS_METADATA_SCRIPT_PATH}`,
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/**
 * Quotes one word of a systemd Exec line. `%` (specifiers) and `$` (variable expansion) are
 * doubled so values pass through literally; anything with spaces or quotes is double-quoted.
 */
export function execArg(word: string): string {
  const literal = word.replace(/%/g, '%%').replace(/\$/g, '$$$$');
  if (/^[A-Za-z0-9_@%+=:,./$-]+$/.test(literal)) return literal;
  return `"${literal.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}
