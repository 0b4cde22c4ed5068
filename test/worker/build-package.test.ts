import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { BuildPack } from '../../proto/gen/buildman.js';
import { locateDockerfile, unpackBuildPack } from '../../src/worker/build-package.js';
import { BuildFailure } from '../../src/worker/worker-errors.js';
import { makePackage } from './recording-manager.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'buildman-package-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

function pack(fields: Partial<BuildPack>): BuildPack {
  return {
    jobJwt: '',
    context: '',
    dockerfilePath: '',
    repository: 'a/b',
    registry: '',
    pullToken: '',
    pushToken: '',
    tagNames: [],
    baseImage: undefined,
    ...fields,
  };
}

const unpack = (p: BuildPack, lines: string[] = []) =>
  unpackBuildPack(p, { workDir: join(dir, 'work'), env: process.env, signal: new AbortController().signal, onLine: (l) => lines.push(l) });

describe('unpackBuildPack', () => {
  it('extracts a tar.gz and a plain tar, detected by their bytes', async () => {
    for (const gzip of [true, false]) {
      const src = join(dir, gzip ? 'gz' : 'plain');
      mkdirSync(src);
      const url = await makePackage(src, { Dockerfile: 'FROM scratch\n', 'sub/file.txt': 'x' }, { gzip });
      const ws = await unpack(pack({ packageUrl: url }));
      expect(readFileSync(ws.dockerfilePath, 'utf8')).toBe('FROM scratch\n');
      expect(readFileSync(join(ws.contextDir, 'sub/file.txt'), 'utf8')).toBe('x');
    }
  });

  it('accepts a bare Dockerfile as the whole package, as Quay does', async () => {
    const file = join(dir, 'upload');
    writeFileSync(file, 'FROM scratch\nCOPY a /a\n');
    const ws = await unpack(pack({ packageUrl: pathToFileURL(file).href }));
    expect(readFileSync(ws.dockerfilePath, 'utf8')).toBe('FROM scratch\nCOPY a /a\n');
  });

  it('refuses zip packages and unknown binaries with a readable reason', async () => {
    const zip = join(dir, 'p.zip');
    writeFileSync(zip, Buffer.from([0x50, 0x4b, 0x03, 0x04, 0, 0, 0]));
    await expect(unpack(pack({ packageUrl: pathToFileURL(zip).href }))).rejects.toThrow(/zip build packages are not supported/);
    const bin = join(dir, 'p.bin');
    writeFileSync(bin, Buffer.from([0, 1, 2, 3]));
    await expect(unpack(pack({ packageUrl: pathToFileURL(bin).href }))).rejects.toThrow(/Invalid build pack/);
  });

  it('says which Dockerfile is missing', async () => {
    const url = await makePackage(dir, { 'README.md': 'hi' });
    await expect(unpack(pack({ packageUrl: url, dockerfilePath: 'Containerfile' }))).rejects.toThrow(/Missing Dockerfile: Containerfile/);
  });

  it.skipIf(spawnSync('git', ['--version']).status !== 0)('clones a git package and checks out the sha', async () => {
    const repo = join(dir, 'repo');
    mkdirSync(repo);
    const git = (...args: string[]) => {
      const r = spawnSync('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@e', ...args], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim();
    };
    git('init', '-q');
    writeFileSync(join(repo, 'Dockerfile'), 'FROM scratch\nCOPY first /f\n');
    git('add', '.');
    git('commit', '-q', '-m', 'first');
    const first = git('rev-parse', 'HEAD');
    writeFileSync(join(repo, 'Dockerfile'), 'FROM scratch\nCOPY second /s\n');
    git('commit', '-q', '-am', 'second');

    const ws = await unpack(pack({ gitPackage: { url: repo, sha: first, privateKey: '' } }));
    expect(readFileSync(ws.dockerfilePath, 'utf8')).toBe('FROM scratch\nCOPY first /f\n');
  });

  it('reports a failed clone as a build failure', async () => {
    const err = await unpack(pack({ gitPackage: { url: join(dir, 'no-such-repo'), sha: 'abc', privateKey: '' } })).catch((e) => e);
    expect(err).toBeInstanceOf(BuildFailure);
    expect(err.message).toMatch(/^Error cloning git repository/);
  });
});

describe('locateDockerfile', () => {
  beforeEach(() => {
    mkdirSync(join(dir, 'pkg/app/build'), { recursive: true });
    writeFileSync(join(dir, 'pkg/Dockerfile'), 'FROM scratch\n');
    writeFileSync(join(dir, 'pkg/app/build/Dockerfile.prod'), 'FROM scratch\n');
  });

  it('treats an empty context and "/" as the package root, and defaults to Dockerfile', async () => {
    for (const context of ['', '/']) {
      const ws = await locateDockerfile(join(dir, 'pkg'), context, '');
      expect(ws.contextDir).toBe(join(dir, 'pkg'));
      expect(ws.dockerfilePath).toBe(join(dir, 'pkg/Dockerfile'));
    }
  });

  it('resolves the Dockerfile path relative to the context', async () => {
    const ws = await locateDockerfile(join(dir, 'pkg'), '/app', 'build/Dockerfile.prod');
    expect(ws.contextDir).toBe(join(dir, 'pkg/app'));
    expect(ws.dockerfilePath).toBe(join(dir, 'pkg/app/build/Dockerfile.prod'));
  });

  it('refuses contexts and Dockerfile paths that escape the package, also through symlinks', async () => {
    writeFileSync(join(dir, 'outside'), 'FROM scratch\n');
    symlinkSync(join(dir, 'outside'), join(dir, 'pkg/link'));
    symlinkSync(dir, join(dir, 'pkg/dirlink'));
    await expect(locateDockerfile(join(dir, 'pkg'), '../', '')).rejects.toThrow(/context .* outside the build package/);
    await expect(locateDockerfile(join(dir, 'pkg'), 'app', '../../outside')).rejects.toThrow(/outside the build package/);
    await expect(locateDockerfile(join(dir, 'pkg'), '', 'link')).rejects.toThrow(/outside the build package/);
    await expect(locateDockerfile(join(dir, 'pkg'), 'dirlink', 'outside')).rejects.toThrow(/outside the build package/);
  });
});
