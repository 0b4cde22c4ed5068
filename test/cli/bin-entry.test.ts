import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PACKAGE_ROOT } from '../../src/util/package-root.js';

const BIN = join(PACKAGE_ROOT, 'bin', 'buildman.js');
const COMPILED = existsSync(join(PACKAGE_ROOT, 'dist', 'src', 'cli', 'main.js'));

/** Runs `buildman` as a process; `whileRunning` gets its stdout so far and may signal it. */
function buildman(args: string[], whileRunning?: (stdout: () => string, pid: number) => Promise<void>) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, BUILDMAN_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    whileRunning?.(() => stdout, child.pid!).catch(reject);
  });
}

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

// `npm test` compiles first; a bare `vitest run` on a fresh checkout has no dist/ to run.
describe.skipIf(!COMPILED)('bin/buildman.js', () => {
  it('exits 3 with the fix when the server is unreachable', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = await buildman(['list', '--server', url]);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`cannot reach buildman at ${url}`);
    expect(run.stderr).toContain('set --server or BUILDMAN_URL');
  });

  it('serves until SIGTERM, then exits 0', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'buildman-bin-'));
    try {
      const run = await buildman(['serve', '--grpc-port', '0', '--http-port', '0', '--data-dir', dataDir, '--log-level', 'warn'], async (stdout, pid) => {
        let url: string | undefined;
        for (let waited = 0; !(url = /^HTTP API on (\S+)$/m.exec(stdout())?.[1]); waited += 50) {
          if (waited > 20_000) throw new Error(`serve did not start: ${stdout()}`);
          await new Promise((r) => setTimeout(r, 50));
        }
        expect((await fetch(`${url}/health`)).status).toBe(200);
        process.kill(pid, 'SIGTERM');
      });
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^gRPC listening on \S+:\d+$/m);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
