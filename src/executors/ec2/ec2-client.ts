import { EC2Client } from '@aws-sdk/client-ec2';
import type { Ec2ExecutorConfig } from '../../config/config-types.js';
import { PermanentError } from '../../errors/buildman-error.js';

/** A call that has not answered by then has failed: the manager falls back rather than wait. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;
export const CONNECT_TIMEOUT_MS = 3_000;
/**
 * One retry of a blip inside the SDK (safe: RunInstances carries a ClientToken); anything longer
 * is the manager's fallback and backoff, not the SDK's.
 */
export const DEFAULT_MAX_ATTEMPTS = 2;

export interface Ec2ClientOptions {
  requestTimeoutMs?: number;
  maxAttempts?: number;
}

/**
 * The EC2 client for an executor: region `EC2_REGION`; static credentials from
 * `AWS_ACCESS_KEY`/`AWS_SECRET_KEY` when set, else the SDK's default chain (environment, shared
 * files, instance or pod role); `EC2_ENDPOINT` (ours) replaces the regional endpoint.
 */
export function createEc2Client(config: Ec2ExecutorConfig, opts: Ec2ClientOptions = {}): EC2Client {
  const accessKey = config.AWS_ACCESS_KEY || undefined;
  const secretKey = config.AWS_SECRET_KEY || undefined;
  if (Boolean(accessKey) !== Boolean(secretKey)) {
    throw new PermanentError(
      `executor ${config.NAME} (ec2): set both AWS_ACCESS_KEY and AWS_SECRET_KEY, or neither to use the default AWS credential chain (environment, ~/.aws, instance role)`,
      'INVALID_CONFIG',
    );
  }
  const requestTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  return new EC2Client({
    region: config.EC2_REGION,
    endpoint: config.EC2_ENDPOINT || undefined,
    credentials: accessKey && secretKey ? { accessKeyId: accessKey, secretAccessKey: secretKey } : undefined,
    maxAttempts: opts.maxAttempts ?? DEFAULT_MAX_ATTEMPTS,
    // Without throwOnRequestTimeout this SDK only warns when requestTimeout passes, and keeps waiting.
    requestHandler: { connectionTimeout: Math.min(CONNECT_TIMEOUT_MS, requestTimeout), requestTimeout, throwOnRequestTimeout: true },
  });
}
