/**
 * The subset of the Ignition 3.0.0 config spec that workers use
 * (https://coreos.github.io/ignition/configuration-v3_0/). Field names are the spec's.
 */
export interface IgnitionConfig {
  ignition: { version: '3.0.0' };
  passwd: { users: IgnitionUser[] };
  storage: { files: IgnitionFile[] };
  systemd: { units: IgnitionUnit[] };
}

export interface IgnitionUser {
  name: string;
  groups?: string[];
  sshAuthorizedKeys?: string[];
}

export interface IgnitionFile {
  /** Absolute path on the machine. */
  path: string;
  /** Replace a file the image already ships (3.0.0 fails on an existing file otherwise). */
  overwrite?: boolean;
  /** Decimal permission bits, e.g. 420 for 0644. */
  mode?: number;
  /** `source` is an RFC 2397 data URL (`data:,` + percent-encoded text). */
  contents: { source: string };
}

export interface IgnitionUnit {
  name: string;
  enabled?: boolean;
  mask?: boolean;
  /** The full unit file; absent to only enable or mask a unit the image ships. */
  contents?: string;
}
