import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';

/** EC2's instance state names, lowercase as EC2 reports them (Quay's Q5 compared against "Running"). */
export type InstanceStateName = 'pending' | 'running' | 'shutting-down' | 'terminated' | 'stopping' | 'stopped';

/** EC2's numeric state codes (the low byte of `instanceState.code`). */
export const STATE_CODES: Readonly<Record<InstanceStateName, number>> = {
  pending: 0,
  running: 16,
  'shutting-down': 32,
  terminated: 48,
  stopping: 64,
  stopped: 80,
};

export interface EmulatedBlockDevice {
  deviceName: string;
  volumeId: string;
  volumeSize: number;
  volumeType: string;
  deleteOnTermination: boolean;
}

/** One instance as the emulator holds it. Tests read these; only the emulator changes them. */
export interface EmulatedInstance {
  instanceId: string;
  reservationId: string;
  imageId: string;
  instanceType: string;
  keyName?: string;
  launchTime: Date;
  state: InstanceStateName;
  /** Why it last changed state, as EC2's `stateReason`/`reason` (e.g. user- or instance-initiated). */
  stateReason?: string;
  subnetId?: string;
  securityGroupIds: string[];
  associatePublicIpAddress?: boolean;
  privateIpAddress: string;
  blockDevices: EmulatedBlockDevice[];
  tags: Map<string, string>;
  clientToken?: string;
  /** Base64 as received. */
  userData?: string;
  shutdownBehavior: 'stop' | 'terminate';
  /** The worker booted for it by the `runWorker` hook, if any. */
  process?: ChildProcess;
  /** The worker's stdout and stderr (what GetConsoleOutput would show). */
  consoleOutput: string;
}

/** `<prefix>-` plus 17 lowercase hex digits, the long id format EC2 uses for instances, reservations, volumes. */
export function ec2Id(prefix: 'i' | 'r' | 'vol'): string {
  return `${prefix}-${randomBytes(9).toString('hex').slice(0, 17)}`;
}

export const INSTANCE_ID_RE = /^i-([0-9a-f]{8}|[0-9a-f]{17})$/;
