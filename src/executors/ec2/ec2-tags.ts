import { createHash } from 'node:crypto';
import type { Tag } from '@aws-sdk/client-ec2';

/** Quay's instance tags (reference §5.2), kept so Quay-era tooling still recognizes the builders. */
export const TAG_NAME = 'Name';
export const BUILDER_NAME = 'Quay Ephemeral Builder';
export const TAG_REGISTRATION_TOKEN = 'RegistrationToken';
export const TAG_BUILD_UUID = 'BuildUUID';
/** Ours: which installation launched it, so counts and the orphan sweep see only our builders. */
export const TAG_INSTALLATION = 'buildman:installation';
/** Ours: the attempt, so a start that failed part-way can still be found and stopped. */
export const TAG_ATTEMPT = 'buildman:attempt';

/** Quay tags the first 36 characters of the registration token (the JWT header: no claims, no signature). */
const REGISTRATION_TOKEN_TAG_CHARS = 36;
const MAX_CLIENT_TOKEN = 64;

export function builderTags(opts: { buildId: string; attempt: number; token: string; installationId: string }): Tag[] {
  return [
    { Key: TAG_NAME, Value: BUILDER_NAME },
    { Key: TAG_REGISTRATION_TOKEN, Value: opts.token.slice(0, REGISTRATION_TOKEN_TAG_CHARS) },
    { Key: TAG_BUILD_UUID, Value: opts.buildId },
    { Key: TAG_INSTALLATION, Value: opts.installationId },
    { Key: TAG_ATTEMPT, Value: String(opts.attempt) },
  ];
}

/**
 * RunInstances' ClientToken for one attempt of one build: the same on every retry, so EC2 launches
 * at most one instance for it. `<buildId>-<attempt>` when that fits EC2's 64 ASCII characters.
 */
export function clientTokenFor(buildId: string, attempt: number): string {
  const plain = `${buildId}-${attempt}`;
  if (plain.length <= MAX_CLIENT_TOKEN && /^[\x21-\x7e]+$/.test(plain)) return plain;
  return `bm-${createHash('sha256').update(plain).digest('hex').slice(0, MAX_CLIENT_TOKEN - 3)}`;
}

export function tagValue(tags: readonly Tag[] | undefined, key: string): string | undefined {
  return tags?.find((t) => t.Key === key)?.Value;
}
