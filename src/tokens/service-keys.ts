import { createPrivateKey, createPublicKey, generateKeyPair, randomBytes, type KeyObject } from 'node:crypto';
import { access, chmod, link, mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { calculateJwkThumbprint, exportJWK } from 'jose';
import { ConfigError } from '../errors/buildman-error.js';

const generateRsaKey = promisify(generateKeyPair);

const KEY_CONFIG = 'INSTANCE_SERVICE_KEY_LOCATION';
const KID_CONFIG = 'INSTANCE_SERVICE_KEY_KID_LOCATION';

export interface ServiceKeys {
  privateKey: KeyObject;
  kid: string;
}

/**
 * The instance service key that signs build tokens (reference §4). Configured paths are read as
 * they are; without them, a key is generated once under `<dataDir>/keys/` and reused on later
 * starts, so tokens minted before a restart still verify.
 */
export async function loadServiceKeys(opts: { keyLocation?: string; kidLocation?: string; dataDir: string }): Promise<ServiceKeys> {
  if (opts.keyLocation || opts.kidLocation) {
    if (!opts.keyLocation || !opts.kidLocation) {
      const [set, unset] = opts.keyLocation ? [KEY_CONFIG, KID_CONFIG] : [KID_CONFIG, KEY_CONFIG];
      throw new ConfigError(`${set} is set but ${unset} is not: set both, or neither to let buildman generate a key under ${path.join(opts.dataDir, 'keys')}`, [unset]);
    }
    return {
      privateKey: await readPrivateKey(opts.keyLocation, KEY_CONFIG),
      kid: await readKid(opts.kidLocation, KID_CONFIG),
    };
  }
  return loadOrGenerateDefault(path.join(opts.dataDir, 'keys'));
}

async function loadOrGenerateDefault(dir: string): Promise<ServiceKeys> {
  const keyPath = path.join(dir, 'quay.pem');
  const kidPath = path.join(dir, 'quay.kid');
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw new ConfigError(`Cannot create the key directory ${dir} (dataDir): ${errorText(err)}`);
  }

  // Create-if-absent; when two instances race on one dataDir, the loser reads the winner's key.
  if (!(await exists(keyPath))) {
    const { privateKey: generated } = await generateRsaKey('rsa', { modulusLength: 2048 });
    await createExclusive(keyPath, generated.export({ type: 'pkcs8', format: 'pem' }) as string);
  }
  const privateKey = await readPrivateKey(keyPath, `${KEY_CONFIG} (default ${keyPath})`);

  // The kid is derived from the key (as Quay derives it from the JWK), so a lost kid file comes back the same.
  if (!(await exists(kidPath))) await createExclusive(kidPath, `${await kidFor(privateKey)}\n`);
  const kid = await readKid(kidPath, `${KID_CONFIG} (default ${kidPath})`);
  return { privateKey, kid };
}

/** Writes `content` to `file` with mode 0600 unless the file exists; a reader never sees it half-written. */
async function createExclusive(file: string, content: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, content, { mode: 0o600, flag: 'wx' });
    await chmod(tmp, 0o600); // the umask may have narrowed it further, never widened; make it exact
    await link(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new ConfigError(`Cannot write ${file}: ${errorText(err)}`);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

async function exists(file: string): Promise<boolean> {
  return access(file).then(
    () => true,
    () => false,
  );
}

async function kidFor(key: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(createPublicKey(key)), 'sha256');
}

async function readPrivateKey(file: string, configKey: string): Promise<KeyObject> {
  let pem: string;
  try {
    pem = await readFile(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${configKey}: cannot read the service key ${file}: ${errorText(err)}`, [configKey]);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new ConfigError(`${configKey}: ${file} is not a PEM private key (unencrypted PKCS#1 or PKCS#8 RSA expected)`, [configKey]);
  }
  if (key.asymmetricKeyType !== 'rsa') {
    throw new ConfigError(`${configKey}: ${file} holds a ${key.asymmetricKeyType} key; build tokens are RS256 and need an RSA key`, [configKey]);
  }
  return key;
}

async function readKid(file: string, configKey: string): Promise<string> {
  let kid: string;
  try {
    kid = (await readFile(file, 'utf8')).trim();
  } catch (err) {
    throw new ConfigError(`${configKey}: cannot read the service key id ${file}: ${errorText(err)}`, [configKey]);
  }
  if (!kid) throw new ConfigError(`${configKey}: ${file} is empty; it must hold the key id (kid)`, [configKey]);
  return kid;
}

function errorText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e?.code === 'ENOENT') return 'no such file';
  if (e?.code === 'EACCES') return 'permission denied';
  return e?.message ?? String(err);
}
