import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { list as listTar } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Phase } from '../../proto/gen/buildman.js';
import type { CliContext } from '../../src/cli/cli-context.js';
import { runCli } from '../../src/cli/program.js';
import { startApiFixture, type ApiFixture } from '../api/api-fixture.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
  lines: string[];
}

/** Runs one command line in-process, against `server` unless the arguments name one. */
async function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; onStdout?: (text: string) => void } = {}): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const ctx: CliContext = {
    stdout: (text) => {
      stdout += text;
      opts.onStdout?.(stdout);
    },
    stderr: (text) => {
      stderr += text;
    },
    env: opts.env ?? { BUILDMAN_URL: fx.url },
    exitCode: 0,
  };
  const code = await runCli(args, ctx);
  return { code, stdout, stderr, lines: stdout.split('\n').filter(Boolean) };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

let fx: ApiFixture;
let work: string;
let project: string;

beforeAll(async () => {
  fx = await startApiFixture();
  work = mkdtempSync(join(tmpdir(), 'buildman-cli-'));
  project = join(work, 'project');
  mkdirSync(join(project, '.git'), { recursive: true });
  mkdirSync(join(project, 'src'));
  writeFileSync(join(project, 'Dockerfile'), 'FROM scratch\nCOPY src /src\n');
  writeFileSync(join(project, 'src', 'app.txt'), 'hello\n');
  writeFileSync(join(project, '.git', 'HEAD'), 'ref: refs/heads/main\n');
});
afterAll(async () => {
  await fx?.close();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('submit', () => {
  it('packs and uploads a directory (without .git), printing the id alone on the first line', async () => {
    const run = await cli(['submit', project, '--repository', 'acme/web', '--tag', 'v1', '--tag', 'latest', '--dockerfile', 'Dockerfile']);
    expect(run.code).toBe(0);
    expect(run.lines).toHaveLength(1);
    expect(run.lines[0]).toMatch(UUID);
    expect(run.stderr).toContain(`buildman logs ${run.lines[0]} --follow`);

    const build = await fx.manager.service.get(run.lines[0]!);
    expect(build).toMatchObject({ repository: 'acme/web', tags: ['v1', 'latest'], dockerfilePath: 'Dockerfile', source: { kind: 'upload' } });

    // What the worker would download: the project's files, paths relative to it, no .git.
    const jobToken = await fx.playWorker(build.id, []);
    const paths: string[] = [];
    await listTar({ file: undefined, onReadEntry: (entry) => void paths.push(entry.path) }).end(
      Buffer.from(await (await fetch(`${fx.url}/api/v1/builds/${build.id}/context?token=${jobToken}`)).arrayBuffer()),
    );
    expect(paths).toEqual(expect.arrayContaining(['./Dockerfile', './src/app.txt']));
    expect(paths.some((p) => p.includes('.git'))).toBe(false);
    await fx.manager.service.cancel(build.id);
  });

  it('sends an archive URL as archive_url, and a git URL with --git-sha (default HEAD) as git', async () => {
    const url = await cli(['submit', 'https://example.com/ctx.tar.gz', '-r', 'acme/url']);
    expect(url.code).toBe(0);
    expect((await fx.manager.service.get(url.lines[0]!)).source).toEqual({ kind: 'url', url: 'https://example.com/ctx.tar.gz' });

    const git = await cli(['submit', 'https://example.com/acme/api.git', '-r', 'acme/api', '--git-sha', 'abc123']);
    expect((await fx.manager.service.get(git.lines[0]!)).source).toEqual({ kind: 'git', url: 'https://example.com/acme/api.git', sha: 'abc123' });

    const head = await cli(['submit', 'git@example.com:acme/api', '-r', 'acme/api']);
    expect((await fx.manager.service.get(head.lines[0]!)).source).toEqual({ kind: 'git', url: 'git@example.com:acme/api', sha: 'HEAD' });

    for (const run of [url, git, head]) await fx.manager.service.cancel(run.lines[0]!);
  });

  it('--wait follows the log and exits 0 when the build completes', async () => {
    let played: Promise<string> | undefined;
    const run = await cli(['submit', 'https://example.com/ctx.tar.gz', '-r', 'acme/done', '--wait'], {
      onStdout: (out) => {
        const id = out.split('\n')[0];
        if (!played && out.includes('\n')) played = fx.playWorker(id!, [Phase.BUILDING, Phase.PUSHING, Phase.COMPLETE]);
      },
    });
    await played;
    expect(run.code).toBe(0);
    expect(run.lines[0]).toMatch(UUID);
    expect(run.lines.slice(1)).toEqual(expect.arrayContaining(['==> build-scheduled', '==> building', 'Step 1/1 : FROM scratch', '==> complete']));
    expect(run.lines.at(-1)).toBe('==> complete');
  });

  it('--wait exits 1 with the phase and reason when the build does not complete', async () => {
    let cancelled: Promise<unknown> | undefined;
    const run = await cli(['submit', 'https://example.com/ctx.tar.gz', '-r', 'acme/stopped', '--wait'], {
      onStdout: (out) => {
        if (!cancelled && out.includes('\n')) cancelled = fx.manager.service.cancel(out.split('\n')[0]!);
      },
    });
    await cancelled;
    expect(run.code).toBe(1);
    expect(run.lines[0]).toMatch(UUID);
    expect(run.stderr).toMatch(new RegExp(`^buildman: build ${run.lines[0]} ended in phase cancelled: .+`, 'm'));
  });

  it.each([
    ['no --repository', ['submit', '.'], /required option '-r, --repository <ns\/name>' not specified/],
    ['a bad --repository', ['submit', '.', '-r', 'Acme'], /--repository must be namespace\/name/],
    ['a missing directory', ['submit', '/no/such/dir', '-r', 'acme/web'], /\/no\/such\/dir is not a directory, an archive/],
    ['--git-sha without a git URL', ['submit', '.', '-r', 'acme/web', '--git-sha', 'abc'], /--git-sha only applies to a git URL/],
    ['a bad --server', ['status', 'x', '--server', 'localhost:8686'], /--server must be an http:\/\/ or https:\/\/ URL/],
    ['an unknown command', ['frobnicate'], /unknown command 'frobnicate'/],
  ])('exits 2 on %s', async (_name, args, message) => {
    const run = await cli(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(run.stdout).toBe('');
  });

  it('exits 2 when the server refuses the request as malformed', async () => {
    const run = await cli(['submit', 'file:///ctx.tar', '-r', 'acme/web', '-t', '-bad-tag']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^buildman: body\.tags\[0\] must be a Docker tag/);
  });
});

describe('status, list, logs, cancel', () => {
  let id: string;
  beforeAll(async () => {
    id = (await cli(['submit', 'https://example.com/ctx.tar.gz', '-r', 'acme/status', '-t', 'v9'])).lines[0]!;
  });

  it('status prints the build for people, and as JSON', async () => {
    const run = await cli(['status', id]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(new RegExp(`^id: +${id}$`, 'm'));
    for (const label of ['repository: +acme/status', 'tags: +v9', 'phase: +\\S+', 'state: +\\S+', 'attempt: +\\d+', 'executor: +\\S+', 'age: +\\d+s']) {
      expect(run.stdout).toMatch(new RegExp(`^${label}$`, 'm'));
    }
    const json = await cli(['status', id, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ id, repository: 'acme/status', tags: ['v9'] });
  });

  it('list prints a table, and JSON', async () => {
    const run = await cli(['list']);
    expect(run.code).toBe(0);
    expect(run.lines[0]).toMatch(/^ID +REPOSITORY +TAGS +PHASE +ATTEMPT +AGE$/);
    expect(run.lines.some((line) => line.startsWith(id) && line.includes('acme/status'))).toBe(true);
    const json = await cli(['list', '--json', '--limit', '2']);
    expect(JSON.parse(json.stdout)).toHaveLength(2);
    expect((await cli(['list', '--limit', '0'])).code).toBe(2);
  });

  it('logs prints phases as ==> lines; cancel ends the build; a second cancel exits 1', async () => {
    const logs = await cli(['logs', id]);
    expect(logs.code).toBe(0);
    expect(logs.lines[0]).toBe('==> build-scheduled');

    const cancel = await cli(['cancel', id]);
    expect(cancel.code).toBe(0);
    expect(cancel.stdout).toBe(`${id} cancelled\n`);

    const followed = await cli(['logs', id, '--follow']);
    expect(followed.code).toBe(0);
    expect(followed.lines.at(-1)).toBe('==> cancelled');

    const again = await cli(['cancel', id]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already ended \(cancelled\)/);
  });

  it('exits 4 for an unknown build', async () => {
    for (const args of [['status', 'no-such-build'], ['logs', 'no-such-build'], ['logs', 'no-such-build', '-f'], ['cancel', 'no-such-build']]) {
      const run = await cli(args);
      expect(run.code, args.join(' ')).toBe(4);
      expect(run.stderr).toMatch(/no-such-build.*buildman list/);
    }
  });
});

describe('server address', () => {
  it('exits 3 with what to do when the server is unreachable', async () => {
    const url = `http://127.0.0.1:${await closedPort()}`;
    const run = await cli(['status', 'abc', '--server', url]);
    expect(run.code).toBe(3);
    expect(run.stderr).toBe(
      `buildman: cannot reach buildman at ${url}: connect ECONNREFUSED ${url.slice(7)} (is \`buildman serve\` running? set --server or BUILDMAN_URL)\n`,
    );
  });

  it('uses BUILDMAN_URL, and --server over it', async () => {
    const dead = `http://127.0.0.1:${await closedPort()}`;
    expect((await cli(['list'], { env: { BUILDMAN_URL: dead } })).code).toBe(3);
    expect((await cli(['list', '--server', fx.url], { env: { BUILDMAN_URL: dead } })).code).toBe(0);
    // Neither: the default address, where nothing listens in this test.
    const fallback = await cli(['list'], { env: {} });
    if (fallback.code === 3) expect(fallback.stderr).toContain('http://127.0.0.1:8686');
  });
});

describe('check-config', () => {
  const write = (name: string, text: string) => {
    const file = join(work, name);
    writeFileSync(file, text);
    return file;
  };

  it('prints the summary and warns about unknown keys, exit 0', async () => {
    const file = write(
      'good.yaml',
      `FEATURE_BUILD_SUPPORT: true
SOME_TYPO_KEY: 1
BUILD_MANAGER:
- ephemeral
- ALLOWED_WORKER_COUNT: 3
  EXECUTORS:
  - EXECUTOR: popen
`,
    );
    const run = await cli(['check-config', file]);
    expect(run.code).toBe(0);
    expect(run.stdout).toMatch(/worker cap: +3/);
    expect(run.stderr).toContain('unknown key SOME_TYPO_KEY is ignored');
  });

  it('exits 2 naming the bad key', async () => {
    const file = write(
      'bad.yaml',
      `BUILD_MANAGER:
- ephemeral
- ALLOWED_WORKER_COUNT: many
  EXECUTORS:
  - EXECUTOR: popen
`,
    );
    const run = await cli(['check-config', file]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/ALLOWED_WORKER_COUNT/);
    expect(run.stdout).toBe('');
  });

  it('exits 2 for a missing file', async () => {
    const run = await cli(['check-config', join(work, 'nope.yaml')]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/config file not found/);
  });
});

describe('serve', () => {
  it('refuses to start with FEATURE_BUILD_SUPPORT: false (exit 2)', async () => {
    const file = join(work, 'off.yaml');
    writeFileSync(file, 'FEATURE_BUILD_SUPPORT: false\nBUILD_MANAGER:\n- ephemeral\n- EXECUTORS:\n  - EXECUTOR: popen\n');
    const run = await cli(['serve', '--config', file, '--log-level', 'silent']);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/FEATURE_BUILD_SUPPORT is false .* set FEATURE_BUILD_SUPPORT: true/);
  });

  it('prints its listeners, serves the API, and stops cleanly on SIGTERM', async () => {
    let ready: (url: string) => void;
    const listening = new Promise<string>((resolve) => (ready = resolve));
    const running = cli(['serve', '--grpc-port', '0', '--http-port', '0', '--data-dir', join(work, 'serve-data'), '--log-level', 'silent'], {
      onStdout: (out) => {
        const url = /^HTTP API on (\S+)$/m.exec(out)?.[1];
        if (url) ready(url);
      },
    });
    const url = await listening;
    const handlers = process.listenerCount('SIGTERM');
    expect((await fetch(`${url}/health`)).status).toBe(200);
    // The handlers are process listeners; emitting the event is what a real SIGTERM does to them.
    process.emit('SIGTERM', 'SIGTERM');
    const run = await running;
    expect(run.code).toBe(0);
    expect(run.lines[0]).toMatch(/^gRPC listening on 127\.0\.0\.1:\d+$/);
    expect(run.lines[1]).toBe(`HTTP API on ${url}`);
    expect(run.stdout).toMatch(/^data dir: .*serve-data$/m);
    // Its signal handlers are gone with it.
    expect(process.listenerCount('SIGTERM')).toBe(handlers - 1);
    await expect(fetch(`${url}/health`)).rejects.toThrow();
  });
});

describe('worker', () => {
  it('exits with the worker’s code: 2 when the environment names no build', async () => {
    const run = await cli(['worker'], { env: {} });
    expect(run.code).toBe(2);
  });
});

describe('help', () => {
  it('--help and --version exit 0', async () => {
    const help = await cli(['--help']);
    expect(help.code).toBe(0);
    for (const command of ['serve', 'submit', 'status', 'list', 'logs', 'cancel', 'check-config', 'worker']) expect(help.stdout).toContain(command);
    expect((await cli(['--version'])).stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});
