import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/errors/buildman-error.js';
import { JwtBuildTokens } from '../../src/tokens/jwt-build-tokens.js';
import { loadServiceKeys } from '../../src/tokens/service-keys.js';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'buildman-keys-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configError(p: Promise<unknown>): Promise<ConfigError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConfigError);
  return err as ConfigError;
}

describe('loadServiceKeys', () => {
  it('generates a key once under <dataDir>/keys with mode 0600 and reuses it', async () => {
    const first = await loadServiceKeys({ dataDir: dir });
    expect(first.privateKey.asymmetricKeyType).toBe('rsa');
    expect(first.privateKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
    expect(first.kid).toMatch(/^[A-Za-z0-9_-]{20,}$/);

    for (const f of ['quay.pem', 'quay.kid']) {
      expect((await stat(path.join(dir, 'keys', f))).mode & 0o777).toBe(0o600);
    }
    const pem = await readFile(path.join(dir, 'keys', 'quay.pem'), 'utf8');

    const second = await loadServiceKeys({ dataDir: dir });
    expect(second.kid).toBe(first.kid);
    expect(await readFile(path.join(dir, 'keys', 'quay.pem'), 'utf8')).toBe(pem);

    // A token minted with the first load verifies with the second: a restart keeps tokens valid.
    const a = new JwtBuildTokens({ ...first, audience: 'h' });
    const b = new JwtBuildTokens({ ...second, audience: 'h' });
    const token = await a.mint('build_job_token', 'b', 'building/b', 60);
    await expect(b.verify(token, 'build_job_token')).resolves.toMatchObject({ build_id: 'b' });
  });

  it('gives two concurrent first starts on one dataDir the same key', async () => {
    const [a, b] = await Promise.all([loadServiceKeys({ dataDir: dir }), loadServiceKeys({ dataDir: dir })]);
    expect(a.kid).toBe(b.kid);
    expect(a.privateKey.equals(b.privateKey)).toBe(true);
  });

  it('loads configured key paths, trimming the kid', async () => {
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const keyLocation = path.join(dir, 'svc.pem');
    const kidLocation = path.join(dir, 'svc.kid');
    await writeFile(keyLocation, privateKey.export({ type: 'pkcs1', format: 'pem' }));
    await writeFile(kidLocation, '  my-kid\n');
    const keys = await loadServiceKeys({ keyLocation, kidLocation, dataDir: dir });
    expect(keys.kid).toBe('my-kid');
    expect(keys.privateKey.equals(privateKey)).toBe(true);
  });

  it('names the config key and the path when a configured file is missing', async () => {
    const keyLocation = path.join(dir, 'nope.pem');
    const kidLocation = path.join(dir, 'k.kid');
    await writeFile(kidLocation, 'k');
    const err = await configError(loadServiceKeys({ keyLocation, kidLocation, dataDir: dir }));
    expect(err.message).toContain('INSTANCE_SERVICE_KEY_LOCATION');
    expect(err.message).toContain(keyLocation);

    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(path.join(dir, 'ok.pem'), privateKey.export({ type: 'pkcs8', format: 'pem' }));
    const missingKid = path.join(dir, 'missing.kid');
    const err2 = await configError(loadServiceKeys({ keyLocation: path.join(dir, 'ok.pem'), kidLocation: missingKid, dataDir: dir }));
    expect(err2.message).toContain('INSTANCE_SERVICE_KEY_KID_LOCATION');
    expect(err2.message).toContain(missingKid);
  });

  it('refuses a file that is not an RSA private key, and an empty kid', async () => {
    const kidLocation = path.join(dir, 'k.kid');
    await writeFile(kidLocation, 'k');
    const junk = path.join(dir, 'junk.pem');
    await writeFile(junk, 'hello');
    expect((await configError(loadServiceKeys({ keyLocation: junk, kidLocation, dataDir: dir }))).message).toMatch(
      /INSTANCE_SERVICE_KEY_LOCATION.*junk\.pem.*not a PEM private key/,
    );

    const ec = path.join(dir, 'ec.pem');
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    await writeFile(ec, privateKey.export({ type: 'pkcs8', format: 'pem' }));
    expect((await configError(loadServiceKeys({ keyLocation: ec, kidLocation, dataDir: dir }))).message).toMatch(
      /INSTANCE_SERVICE_KEY_LOCATION.*ec\.pem.*RSA/,
    );

    const rsa = path.join(dir, 'rsa.pem');
    await writeFile(rsa, generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }));
    await writeFile(kidLocation, ' \n');
    expect((await configError(loadServiceKeys({ keyLocation: rsa, kidLocation, dataDir: dir }))).message).toMatch(
      /INSTANCE_SERVICE_KEY_KID_LOCATION.*empty/,
    );
  });

  it('refuses one of the two locations without the other', async () => {
    const err = await configError(loadServiceKeys({ keyLocation: path.join(dir, 'a.pem'), dataDir: dir }));
    expect(err.message).toMatch(/INSTANCE_SERVICE_KEY_KID_LOCATION is not/);
    expect(err.issues).toEqual(['INSTANCE_SERVICE_KEY_KID_LOCATION']);
  });
});
