import { createPublicKey, type KeyObject } from 'node:crypto';
import { SignJWT, decodeProtectedHeader, errors as joseErrors, jwtVerify, type JWTPayload } from 'jose';
import { TokenError } from '../errors/buildman-error.js';
import type { BuildTokenContext, BuildTokenType, BuildTokens } from './build-tokens.js';

/** Quay's `JWT_CLOCK_SKEW_SECONDS`. */
export const TOKEN_LEEWAY_SECONDS = 30;
/** The only `sub` Quay puts in (and accepts from) a build token. */
export const ANONYMOUS_SUB = '(anonymous)';
const ALGORITHM = 'RS256';

export interface JwtBuildTokensOptions {
  /** This instance's signing key. Its public half verifies tokens carrying `kid`. */
  privateKey: KeyObject;
  kid: string;
  /** `INSTANCE_SERVICE_KEY_SERVICE`, default `quay`. */
  issuer?: string;
  /** The manager hostname. */
  audience: string;
  /**
   * Optional: public keys of other instances (Quay looks service keys up in its database), so a
   * token minted by one manager verifies on another. Consulted only for a `kid` that is not ours.
   */
  lookupPublicKey?: (kid: string) => KeyObject | undefined | Promise<KeyObject | undefined>;
  /** Epoch ms; injectable for tests. */
  now?: () => number;
}

/**
 * Build tokens as Quay mints and checks them (reference §4). Verification follows Quay's order
 * (kid, key lookup, signature and standard claims, sub, context, type) so a worker sees the same
 * reason Quay would give. Error messages never contain the token.
 */
export class JwtBuildTokens implements BuildTokens {
  private readonly privateKey: KeyObject;
  private readonly publicKey: KeyObject;
  private readonly kid: string;
  private readonly issuer: string;
  private readonly audience: string;
  private readonly lookupPublicKey?: JwtBuildTokensOptions['lookupPublicKey'];
  private readonly now: () => number;

  constructor(opts: JwtBuildTokensOptions) {
    if (opts.privateKey.type !== 'private' || opts.privateKey.asymmetricKeyType !== 'rsa') {
      throw new TypeError('JwtBuildTokens needs an RSA private key');
    }
    if (!opts.kid) throw new TypeError('JwtBuildTokens needs a kid');
    this.privateKey = opts.privateKey;
    this.publicKey = createPublicKey(opts.privateKey);
    this.kid = opts.kid;
    this.issuer = opts.issuer ?? 'quay';
    this.audience = opts.audience;
    this.lookupPublicKey = opts.lookupPublicKey;
    this.now = opts.now ?? Date.now;
  }

  async mint(type: BuildTokenType, buildId: string, jobId: string, lifetimeSeconds: number): Promise<string> {
    const nowSeconds = this.now() / 1000;
    const issuedAt = Math.floor(nowSeconds);
    const context: BuildTokenContext = { token_type: type, build_id: buildId, job_id: jobId, expiration: lifetimeSeconds };
    return new SignJWT({ access: {}, context })
      .setProtectedHeader({ alg: ALGORITHM, kid: this.kid })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(ANONYMOUS_SUB)
      .setNotBefore(issuedAt)
      .setIssuedAt(issuedAt)
      .setExpirationTime(Math.floor(nowSeconds + lifetimeSeconds))
      .sign(this.privateKey);
  }

  async verify(token: string, expected: BuildTokenType): Promise<BuildTokenContext> {
    if (typeof token !== 'string' || token.length === 0) throw new TokenError('Missing token');

    // 1. The kid, read from the unverified header only to choose the key.
    let kid: unknown;
    try {
      kid = decodeProtectedHeader(token).kid;
    } catch {
      throw new TokenError('Malformed token: not a compact JWS');
    }
    if (typeof kid !== 'string' || kid.length === 0) throw new TokenError('Missing kid header on encoded JWT');

    // 2. A known key.
    const key = kid === this.kid ? this.publicKey : await this.lookupPublicKey?.(kid);
    if (!key) throw new TokenError('Unknown service key');

    // 3. Signature (RS256 only), audience, issuer, time claims with leeway.
    const nowMs = this.now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: [ALGORITHM],
        audience: this.audience,
        issuer: this.issuer,
        clockTolerance: TOKEN_LEEWAY_SECONDS,
        requiredClaims: ['nbf', 'iat', 'exp'],
        currentDate: new Date(nowMs),
      }));
    } catch (err) {
      throw new TokenError(describeJoseError(err));
    }
    // jose checks `iat` only together with a max age, so the future check is ours (as PyJWT does it).
    if (typeof payload.iat !== 'number') throw new TokenError('Invalid "iat" claim: must be a number');
    if (payload.iat > Math.floor(nowMs / 1000) + TOKEN_LEEWAY_SECONDS) {
      throw new TokenError('The token is not yet valid (iat)');
    }

    // 4. The anonymous subject.
    if (payload.sub !== ANONYMOUS_SUB) throw new TokenError('Wrong sub field in JWT');

    // 5. The context: every field present, truthy and of the right type.
    const context = readContext(payload.context);

    // 6. The type, with Quay's exact words.
    if (context.token_type !== expected) {
      throw new TokenError(`Build token type in JWT does not match expected type: ${expected}`);
    }
    return context;
  }
}

function readContext(value: unknown): BuildTokenContext {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TokenError('Token has no context claim');
  }
  const ctx = value as Record<string, unknown>;
  for (const field of ['token_type', 'build_id', 'job_id', 'expiration'] as const) {
    if (!ctx[field]) throw new TokenError(`Token context is missing "${field}"`);
  }
  for (const field of ['token_type', 'build_id', 'job_id'] as const) {
    if (typeof ctx[field] !== 'string') throw new TokenError(`Token context "${field}" must be a string`);
  }
  if (typeof ctx.expiration !== 'number') throw new TokenError('Token context "expiration" must be a number');
  return {
    token_type: ctx.token_type as BuildTokenType,
    build_id: ctx.build_id as string,
    job_id: ctx.job_id as string,
    expiration: ctx.expiration,
  };
}

/** Turns jose's failure into a reason a worker's operator can act on (words as PyJWT's where they exist). */
function describeJoseError(err: unknown): string {
  if (err instanceof joseErrors.JWTExpired) return 'Signature has expired';
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    if (err.reason === 'missing') return `Token is missing the required "${err.claim}" claim`;
    switch (err.claim) {
      case 'aud':
        return 'Invalid audience';
      case 'iss':
        return 'Invalid issuer';
      case 'nbf':
        return 'The token is not yet valid (nbf)';
      default:
        return `Invalid "${err.claim}" claim`;
    }
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) return 'Signature verification failed';
  if (err instanceof joseErrors.JOSEAlgNotAllowed) return 'The specified alg value is not allowed (RS256 only)';
  // Malformed header, payload or signature; jose's messages describe the part, never echo the token.
  if (err instanceof joseErrors.JOSEError) return `Malformed token: ${err.message}`;
  return 'Malformed token';
}
