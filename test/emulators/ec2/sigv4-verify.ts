import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';

/** Why a request's signature was refused, as the EC2 error it becomes. */
export interface AuthProblem {
  code: 'AuthFailure' | 'MissingAuthenticationToken' | 'IncompleteSignature' | 'RequestExpired';
  message: string;
}

export interface SignedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/** Real EC2 refuses requests signed more than 5 minutes away from its clock. */
const MAX_SKEW_MS = 5 * 60_000;

const HEADER_RE =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

/**
 * Checks an AWS Signature Version 4 `Authorization` header the way EC2 does: the access key must be
 * known, the header well-formed, the service `ec2`, the date fresh, and (when `verify`) the signature
 * must be the HMAC the secret gives. Returns the access key id and the region it was signed for, or the problem.
 */
export function checkSigV4(
  req: SignedRequest,
  secrets: ReadonlyMap<string, string>,
  opts: { verify: boolean; now: number },
): { accessKeyId: string; region: string } | AuthProblem {
  const header = req.headers.authorization;
  if (!header) return { code: 'MissingAuthenticationToken', message: 'Request is missing Authentication Token' };
  const m = HEADER_RE.exec(header);
  if (!m) return { code: 'IncompleteSignature', message: `Authorization header is not a well-formed AWS4-HMAC-SHA256 signature` };
  const [, accessKeyId, scopeDate, region, service, signedHeaderList, signature] = m;
  const secret = secrets.get(accessKeyId);
  if (secret === undefined) return { code: 'AuthFailure', message: 'AWS was not able to validate the provided access credentials' };
  if (service !== 'ec2') return { code: 'IncompleteSignature', message: `Credential should be scoped to correct service: 'ec2'` };

  const amzDate = header1(req.headers['x-amz-date']);
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate) || amzDate.slice(0, 8) !== scopeDate)
    return { code: 'IncompleteSignature', message: 'X-Amz-Date is missing or does not match the credential scope date' };
  const signedAt = Date.parse(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  if (Math.abs(opts.now - signedAt) > MAX_SKEW_MS) return { code: 'RequestExpired', message: `Request has expired. Timestamp date is ${amzDate}` };

  const signedHeaders = signedHeaderList.split(';');
  if (!signedHeaders.includes('host')) return { code: 'IncompleteSignature', message: `'Host' must be a signed header` };
  if (!opts.verify) return { accessKeyId, region };

  const [path, query = ''] = req.url.split('?', 2);
  const canonicalHeaders = signedHeaders.map((name) => `${name}:${canonicalValue(req.headers[name])}\n`).join('');
  const payloadHash = header1(req.headers['x-amz-content-sha256']) ?? sha256(req.body);
  if (payloadHash !== sha256(req.body)) return { code: 'AuthFailure', message: 'The provided x-amz-content-sha256 header does not match what was computed' };
  const canonicalRequest = [req.method, path || '/', canonicalQuery(query), canonicalHeaders, signedHeaderList, payloadHash].join('\n');
  const scope = `${scopeDate}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonicalRequest)].join('\n');
  let key: Buffer = hmac(`AWS4${secret}`, scopeDate);
  for (const part of [region, service, 'aws4_request']) key = hmac(key, part);
  const expected = Buffer.from(hmac(key, stringToSign).toString('hex'));
  const given = Buffer.from(signature);
  if (expected.length !== given.length || !timingSafeEqual(expected, given))
    return { code: 'AuthFailure', message: 'AWS was not able to validate the provided access credentials' };
  return { accessKeyId, region };
}

function header1(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function canonicalValue(value: string | string[] | undefined): string {
  const joined = Array.isArray(value) ? value.join(',') : (value ?? '');
  return joined.trim().replace(/\s+/g, ' ');
}

function canonicalQuery(query: string): string {
  if (!query) return '';
  const enc = (s: string) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return [...new URLSearchParams(query)]
    .map(([k, v]) => `${enc(k)}=${enc(v)}`)
    .sort()
    .join('&');
}

function sha256(data: string): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
