/**
 * HTTP status EC2 sends with each error code. Client errors are 4xx and server errors 5xx, per
 * EC2's "Error codes for the Amazon EC2 API": capacity shortages are listed as server errors (500),
 * throttling is a 503, bad credentials 401, a denied IAM action 403. Anything unlisted is a 400.
 */
export const EC2_ERROR_STATUS: Readonly<Record<string, number>> = {
  AuthFailure: 401,
  MissingAuthenticationToken: 401,
  UnauthorizedOperation: 403,
  Blocked: 403,
  OptInRequired: 403,
  InternalError: 500,
  InternalFailure: 500,
  InsufficientInstanceCapacity: 500,
  InsufficientCapacity: 500,
  InsufficientAddressCapacity: 500,
  Unavailable: 503,
  ServiceUnavailable: 503,
  RequestLimitExceeded: 503,
};

/** Default messages, worded as EC2 words them, for faults injected by code alone. */
export const EC2_ERROR_MESSAGES: Readonly<Record<string, string>> = {
  AuthFailure: 'AWS was not able to validate the provided access credentials',
  UnauthorizedOperation: 'You are not authorized to perform this operation.',
  InternalError: 'An internal error has occurred',
  RequestLimitExceeded: 'Request limit exceeded.',
  InsufficientInstanceCapacity:
    'We currently do not have sufficient capacity in the Availability Zone you requested. Our system will be working on provisioning additional capacity.',
  InstanceLimitExceeded: 'You have requested more instances than your current instance limit allows for the specified instance type.',
  VcpuLimitExceeded: 'You have requested more vCPU capacity than your current vCPU limit allows for the instance bucket that the specified instance type belongs to.',
  Unavailable: 'The server is overloaded and cannot handle the request.',
};

/** An EC2 API error the emulator answers with: `<Response><Errors><Error>…` and the code's status. */
export class Ec2ApiError extends Error {
  readonly status: number;

  constructor(
    readonly code: string,
    message?: string,
    status?: number,
  ) {
    super(message ?? EC2_ERROR_MESSAGES[code] ?? code);
    this.status = status ?? EC2_ERROR_STATUS[code] ?? 400;
  }
}
