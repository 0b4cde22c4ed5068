import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { SignJWT, decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { TokenError } from '../../src/errors/buildman-error.js';
import { JwtBuildTokens } from '../../src/tokens/jwt-build-tokens.js';

const AUDIENCE = 'buildman.example.com';
const ISSUER = 'quay';
const KID = 'test-kid';
const T0 = 1_700_000_000_000; // a fixed "now", ms

function rsaKey(): KeyObject {
  return generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
}

/** A clock the tests move by hand. */
function clock(start = T0) {
  let now = start;
  return { now: () => now, set: (ms: number) => (now = ms) };
}

let key: KeyObject;
let otherKey: KeyObject;

beforeAll(() => {
  key = rsaKey();
  otherKey = rsaKey();
});

function tokens(over: Partial<ConstructorParameters<typeof JwtBuildTokens>[0]> = {}) {
  return new JwtBuildTokens({ privateKey: key, kid: KID, issuer: ISSUER, audience: AUDIENCE, now: () => T0, ...over });
}

const nowS = Math.floor(T0 / 1000);
const goodContext = { token_type: 'build_job_token', build_id: 'b-1', job_id: 'building/b-1', expiration: 7200 };

/** Signs an arbitrary payload with our key (or another), for claims `mint` never produces. */
async function craft(payload: JWTPayload, opts: { header?: Record<string, unknown>; signWith?: KeyObject } = {}) {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'RS256', kid: KID, ...opts.header })
    .sign(opts.signWith ?? key);
}

function basePayload(over: JWTPayload = {}): JWTPayload {
  return {
    iss: ISSUER,
    aud: AUDIENCE,
    sub: '(anonymous)',
    nbf: nowS,
    iat: nowS,
    exp: nowS + 7200,
    access: {},
    context: { ...goodContext },
    ...over,
  };
}

async function refusal(p: Promise<unknown>): Promise<TokenError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenError);
  return err as TokenError;
}

describe('JwtBuildTokens', () => {
  it('mints Quay’s exact claims and header, and verifies its own token', async () => {
    const t = tokens({ now: () => T0 + 999 });
    const token = await t.mint('build_job_token', 'b-1', 'building/b-1', 7200);

    expect(decodeProtectedHeader(token)).toEqual({ alg: 'RS256', kid: KID });
    const claims = decodeJwt(token);
    expect(claims).toEqual({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: '(anonymous)',
      nbf: nowS,
      iat: nowS,
      exp: nowS + 7200,
      access: {},
      context: { token_type: 'build_job_token', build_id: 'b-1', job_id: 'building/b-1', expiration: 7200 },
    });
    await expect(t.verify(token, 'build_job_token')).resolves.toEqual(claims.context);
  });

  it('handles both token types', async () => {
    const t = tokens();
    const reg = await t.mint('build_job_registration', 'b-2', 'pfx/building/b-2', 60);
    expect(await t.verify(reg, 'build_job_registration')).toEqual({
      token_type: 'build_job_registration',
      build_id: 'b-2',
      job_id: 'pfx/building/b-2',
      expiration: 60,
    });
    expect(decodeJwt(reg).exp).toBe(nowS + 60);
    const job = await t.mint('build_job_token', 'b-2', 'pfx/building/b-2', 7200);
    expect((await t.verify(job, 'build_job_token')).token_type).toBe('build_job_token');
  });

  it('refuses the wrong type with Quay’s exact words', async () => {
    const t = tokens();
    const reg = await t.mint('build_job_registration', 'b-1', 'building/b-1', 60);
    const err = await refusal(t.verify(reg, 'build_job_token'));
    expect(err.message).toBe('Build token type in JWT does not match expected type: build_job_token');
    const job = await t.mint('build_job_token', 'b-1', 'building/b-1', 60);
    expect((await refusal(t.verify(job, 'build_job_registration'))).message).toBe(
      'Build token type in JWT does not match expected type: build_job_registration',
    );
  });

  it('accepts an expired token within the 30 s leeway and refuses one beyond it', async () => {
    const c = clock();
    const t = tokens({ now: c.now });
    const token = await t.mint('build_job_token', 'b-1', 'building/b-1', 60);
    c.set(T0 + 60_000 + 29_000);
    await expect(t.verify(token, 'build_job_token')).resolves.toBeTruthy();
    c.set(T0 + 60_000 + 31_000);
    expect((await refusal(t.verify(token, 'build_job_token'))).message).toMatch(/expired/i);
  });

  it('refuses nbf in the future beyond the leeway, accepts it within', async () => {
    const t = tokens();
    await expect(t.verify(await craft(basePayload({ nbf: nowS + 20 })), 'build_job_token')).resolves.toBeTruthy();
    const err = await refusal(t.verify(await craft(basePayload({ nbf: nowS + 31 })), 'build_job_token'));
    expect(err.message).toMatch(/not yet valid \(nbf\)/);
  });

  it('refuses iat in the future beyond the leeway, accepts it within', async () => {
    const t = tokens();
    await expect(t.verify(await craft(basePayload({ iat: nowS + 30 })), 'build_job_token')).resolves.toBeTruthy();
    const err = await refusal(t.verify(await craft(basePayload({ iat: nowS + 31 })), 'build_job_token'));
    expect(err.message).toMatch(/not yet valid \(iat\)/);
  });

  it.each(['nbf', 'iat', 'exp'])('requires the %s claim', async (claim) => {
    const payload = basePayload();
    delete payload[claim];
    const err = await refusal(tokens().verify(await craft(payload), 'build_job_token'));
    expect(err.message).toContain(`"${claim}"`);
  });

  it('refuses a token for another audience', async () => {
    const token = await tokens({ audience: 'elsewhere.example.com' }).mint('build_job_token', 'b', 'building/b', 60);
    expect((await refusal(tokens().verify(token, 'build_job_token'))).message).toMatch(/audience/i);
  });

  it('refuses a token from another issuer', async () => {
    const token = await tokens({ issuer: 'not-quay' }).mint('build_job_token', 'b', 'building/b', 60);
    expect((await refusal(tokens().verify(token, 'build_job_token'))).message).toMatch(/issuer/i);
  });

  it('refuses a forgery signed by another key under our kid', async () => {
    const forger = new JwtBuildTokens({ privateKey: otherKey, kid: KID, issuer: ISSUER, audience: AUDIENCE, now: () => T0 });
    const token = await forger.mint('build_job_token', 'b', 'building/b', 60);
    expect((await refusal(tokens().verify(token, 'build_job_token'))).message).toMatch(/signature verification failed/i);
  });

  it('refuses an unknown kid, and accepts another instance’s kid through lookupPublicKey', async () => {
    const other = new JwtBuildTokens({ privateKey: otherKey, kid: 'other-kid', issuer: ISSUER, audience: AUDIENCE, now: () => T0 });
    const token = await other.mint('build_job_token', 'b', 'building/b', 60);
    expect((await refusal(tokens().verify(token, 'build_job_token'))).message).toBe('Unknown service key');

    const { createPublicKey } = await import('node:crypto');
    const withLookup = tokens({ lookupPublicKey: (kid) => (kid === 'other-kid' ? createPublicKey(otherKey) : undefined) });
    await expect(withLookup.verify(token, 'build_job_token')).resolves.toMatchObject({ build_id: 'b' });
  });

  it('refuses a token without a kid header', async () => {
    const token = await new SignJWT(basePayload()).setProtectedHeader({ alg: 'RS256' }).sign(key);
    expect((await refusal(tokens().verify(token, 'build_job_token'))).message).toMatch(/missing kid/i);
  });

  it('refuses alg none', async () => {
    const b64 = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const token = `${b64({ alg: 'none', kid: KID })}.${b64(basePayload())}.`;
    expect((await refusal(tokens().verify(token, 'build_job_token'))).message).toMatch(/alg/);
  });

  it('refuses HS256, even keyed with our public key bytes', async () => {
    const { createPublicKey } = await import('node:crypto');
    const secret = new Uint8Array(Buffer.from(createPublicKey(key).export({ type: 'spki', format: 'pem' }) as string));
    const token = await new SignJWT(basePayload()).setProtectedHeader({ alg: 'HS256', kid: KID }).sign(secret);
    expect((await refusal(tokens().verify(token, 'build_job_token'))).message).toMatch(/alg/);
  });

  it('refuses a wrong sub', async () => {
    const err = await refusal(tokens().verify(await craft(basePayload({ sub: 'someone' })), 'build_job_token'));
    expect(err.message).toMatch(/sub/);
  });

  it.each(['token_type', 'build_id', 'job_id', 'expiration'])('refuses a context without %s', async (field) => {
    const context: Record<string, unknown> = { ...goodContext };
    delete context[field];
    const err = await refusal(tokens().verify(await craft(basePayload({ context })), 'build_job_token'));
    expect(err.message).toContain(field);
  });

  it('refuses falsy or mistyped context fields and a missing context', async () => {
    const t = tokens();
    const bad = async (context: unknown) => refusal(t.verify(await craft(basePayload({ context })), 'build_job_token'));
    expect((await bad({ ...goodContext, build_id: '' })).message).toContain('build_id');
    expect((await bad({ ...goodContext, expiration: 0 })).message).toContain('expiration');
    expect((await bad({ ...goodContext, expiration: '7200' })).message).toMatch(/expiration.*number/);
    expect((await bad({ ...goodContext, job_id: 7 })).message).toMatch(/job_id.*string/);
    expect((await bad(undefined)).message).toMatch(/context/);
  });

  it('refuses malformed strings without echoing them', async () => {
    const t = tokens();
    for (const junk of ['not-a-jwt', 'a.b.c', '', 'eyJhbGciOiJSUzI1NiJ9.@@@.###']) {
      const err = await refusal(t.verify(junk, 'build_job_token'));
      if (junk) expect(err.message).not.toContain(junk);
    }
  });

  it('never puts the token into an error message', async () => {
    const t = tokens();
    const token = await t.mint('build_job_registration', 'b', 'building/b', 60);
    const err = await refusal(t.verify(token, 'build_job_token'));
    expect(err.message).not.toContain(token);
    const tampered = token.slice(0, -4) + (token.endsWith('AAAA') ? 'BBBB' : 'AAAA');
    const err2 = await refusal(t.verify(tampered, 'build_job_registration'));
    expect(err2.message).not.toContain(tampered.split('.')[2]);
  });
});
