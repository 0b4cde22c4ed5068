import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A PEM pair on disk (paths, for the executor's config) and in memory (for servers). */
export interface PemPair {
  certFile: string;
  keyFile: string;
  cert: string;
  key: string;
}

/**
 * A throwaway CA with a server certificate for 127.0.0.1/localhost and client certificates on
 * request, made with openssl the way a cluster's PKI is: the API server presents a CA-signed
 * certificate, and clients authenticate with certificates whose CN is the user name.
 */
export class TestPki {
  readonly dir: string;
  readonly ca: PemPair;
  readonly server: PemPair;

  private constructor(dir: string) {
    this.dir = dir;
    this.ca = selfSigned(dir, 'ca', 'buildman-test-cluster-ca');
    this.server = signed(dir, 'server', 'kube-apiserver', this.ca, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth');
  }

  static create(): TestPki {
    return new TestPki(mkdtempSync(join(tmpdir(), 'buildman-kube-pki-')));
  }

  /** A client certificate for `user`, signed by this CA (or by `otherCa`, to test a rejected one). */
  clientCert(user: string, otherCa?: PemPair): PemPair {
    const name = `client-${user.replace(/[^A-Za-z0-9-]/g, '_')}${otherCa ? '-foreign' : ''}`;
    return signed(this.dir, name, user, otherCa ?? this.ca, 'extendedKeyUsage=clientAuth');
  }

  /** Another, unrelated CA: a server or client certificate from it must not be trusted. */
  foreignCa(): PemPair {
    return selfSigned(this.dir, 'foreign-ca', 'some-other-ca');
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function selfSigned(dir: string, name: string, cn: string): PemPair {
  const keyFile = join(dir, `${name}.key`);
  const certFile = join(dir, `${name}.crt`);
  openssl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  return read(certFile, keyFile);
}

function signed(dir: string, name: string, cn: string, ca: PemPair, extensions: string): PemPair {
  const keyFile = join(dir, `${name}.key`);
  const csrFile = join(dir, `${name}.csr`);
  const certFile = join(dir, `${name}.crt`);
  const extFile = join(dir, `${name}.ext`);
  writeFileSync(extFile, `basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n${extensions}\n`);
  openssl(['req', '-new', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', csrFile, '-subj', `/CN=${cn}`]);
  openssl(['x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial', '-out', certFile, '-days', '2', '-extfile', extFile]);
  return read(certFile, keyFile);
}

function read(certFile: string, keyFile: string): PemPair {
  return { certFile, keyFile, cert: readFileSync(certFile, 'utf8'), key: readFileSync(keyFile, 'utf8') };
}
