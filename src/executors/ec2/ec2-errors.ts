import { BuildmanError, CapacityError, InfraError, PermanentError } from '../../errors/buildman-error.js';
import { classifyExecutorFailure, excerpt } from '../executor-errors.js';

/**
 * EC2 error codes → the config key to fix. The kind (retryable, capacity, permanent) comes from the
 * shared classifier: 5xx, throttling and auth are retryable, capacity and quota codes are capacity,
 * other 4xx (InvalidParameterValue, InvalidAMIID.*, …) are permanent.
 */
const HINTS: ReadonlyArray<[RegExp, string]> = [
  [/^InvalidAMIID\./, 'Check COREOS_AMI: it must name an AMI that exists in EC2_REGION and that these credentials may launch'],
  [/^InvalidKeyPair\./, 'Check EC2_KEY_NAME: the key pair must exist in EC2_REGION'],
  [/^InvalidSubnet/, 'Check EC2_VPC_SUBNET_ID: the subnet must exist in EC2_REGION'],
  [/^InvalidGroup|^InvalidSecurityGroup/, 'Check EC2_SECURITY_GROUP_IDS: each group must exist in the subnet\'s VPC'],
  [/^InvalidInstanceType$|^Unsupported$/, 'Check EC2_INSTANCE_TYPE: it must be offered in EC2_REGION (and the subnet\'s zone)'],
  [/^(AuthFailure|UnauthorizedOperation|InvalidClientTokenId|SignatureDoesNotMatch|OptInRequired|Blocked)$/,
    'Check AWS_ACCESS_KEY/AWS_SECRET_KEY (or the instance role) and that they allow ec2:RunInstances, ec2:CreateTags, ec2:DescribeInstances and ec2:TerminateInstances in EC2_REGION'],
  [/^(InstanceLimitExceeded|VcpuLimitExceeded)$/, 'Raise the account\'s EC2 quota for EC2_INSTANCE_TYPE in EC2_REGION, or lower ALLOWED_WORKER_COUNT; builds fall back to the next executor meanwhile'],
  [/^Insufficient\w*Capacity$/, 'EC2 has no spare EC2_INSTANCE_TYPE capacity there right now; builds fall back to the next executor, or choose another instance type or subnet'],
  [/^RequestLimitExceeded$/, 'EC2 is throttling this account\'s API calls; it is retried with backoff'],
  [/^InvalidParameterValue$/, 'Check EC2_INSTANCE_TYPE, BLOCK_DEVICE_SIZE and the other ec2 executor keys against what EC2 accepts'],
  [/^IdempotentParameterMismatch$/, 'A launch for this build attempt was already made with other parameters'],
];

/** An AWS SDK error's code (`InvalidAMIID.NotFound`), if it is one. */
export function awsErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { Code?: unknown; name?: unknown; $metadata?: unknown };
  if (typeof e.Code === 'string') return e.Code;
  return e.$metadata !== undefined && typeof e.name === 'string' ? e.name : undefined;
}

/**
 * Turns whatever the EC2 client threw into the error family, the message naming the executor, the
 * call and the key to fix. Request parameters (user data, tokens) and credentials never reach it.
 */
export function ec2Failure(err: unknown, executorName: string, action: string): BuildmanError {
  if (err instanceof BuildmanError) return err;
  const executor = `executor ${executorName} (ec2)`;
  if ((err as { name?: unknown } | null)?.name === 'CredentialsProviderError') {
    return new InfraError(
      `${executor}: ${action} failed: no AWS credentials found. Set AWS_ACCESS_KEY and AWS_SECRET_KEY, or provide credentials through the environment, ~/.aws or an instance role`,
      'EXECUTOR_AUTH',
      err,
    );
  }
  const base = classifyExecutorFailure(err, { executor, action });
  if (base.code === 'EXECUTOR_UNREACHABLE') {
    base.message += ' (the endpoint is EC2_ENDPOINT when set, else the regional EC2 endpoint of EC2_REGION)';
    return base;
  }
  const code = awsErrorCode(err);
  const hint = code === undefined ? undefined : HINTS.find(([re]) => re.test(code))?.[1];
  if (hint === undefined) return base;

  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const said = excerpt((err as Error).message ?? '');
  const message = `${executor}: ${action} failed (${status ? `HTTP ${status}, ` : ''}${code})${said ? `: ${said}` : ''}. ${hint}`;
  const Kind = base.kind === 'capacity' ? CapacityError : base.kind === 'permanent' ? PermanentError : InfraError;
  return new Kind(message, base.code, err);
}
