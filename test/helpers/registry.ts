import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { freePort } from './free-port.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const BINARY = 'docker-registry';

/** Whether Debian's docker-registry (Docker Distribution) is installed. */
export function hasRegistry(): boolean {
  return spawnSync(BINARY, ['--version'], { encoding: 'utf8' }).status === 0;
}

export interface LocalRegistry {
  /** `127.0.0.1:<port>`: what a build pack's `registry` holds. */
  host: string;
  /** Tags of a repository, from `GET /v2/<repo>/tags/list` ([] when unknown). */
  tags(repository: string): Promise<string[]>;
  stop(): Promise<void>;
}

export interface RegistryOptions {
  /** Require basic auth with these credentials (bcrypt htpasswd line made with python3's crypt). */
  auth?: { username: string; password: string };
}


/** bcrypt (the only hash Distribution accepts) at the lowest cost, so each registry request stays fast; glibc crypt via python3 makes it without extra packages. */
export function bcryptLine(username: string, password: string): string | undefined {
  const r = spawnSync(
    'python3',
    ['-W', 'ignore', '-c', 'import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))', password],
    { encoding: 'utf8' },
  );
  const hash = r.stdout?.trim();
  return r.status === 0 && hash?.startsWith('$2') ? `${username}:${hash}` : undefined;
}

/**
 * Starts docker-registry on 127.0.0.1 only (the packaged config listens on every interface, so it
 * is never used), storing in a tmp dir. Resolves once `/v2/` answers.
 */
export async function startRegistry(opts: RegistryOptions = {}): Promise<LocalRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'buildman-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let authBlock = '';
  if (opts.auth) {
    const line = bcryptLine(opts.auth.username, opts.auth.password);
    if (!line) throw new Error('cannot make a bcrypt htpasswd entry (python3 crypt with blowfish unavailable)');
    writeFileSync(join(dir, 'htpasswd'), line + '\n');
    authBlock = `auth:\n  htpasswd:\n    realm: buildman-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  writeFileSync(
    join(dir, 'config.yml'),
    `version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true\n` +
      `http:\n  addr: ${host}\n  secret: buildman-test-secret\n${authBlock}`,
  );
  const child: ChildProcess = spawn(BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  const authHeader = opts.auth
    ? { authorization: 'Basic ' + Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64') }
    : undefined;

  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const res = await fetch(`http://${host}/v2/`, { headers: authHeader });
      if (res.status === 200) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start on ${host}: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }

  return {
    host,
    async tags(repository) {
      const res = await fetch(`http://${host}/v2/${repository}/tags/list`, { headers: authHeader });
      if (res.status === 404) return [];
      if (!res.ok) throw new Error(`tags/list for ${repository}: HTTP ${res.status}`);
      const body = (await res.json()) as { tags: string[] | null };
      return (body.tags ?? []).sort();
    },
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
