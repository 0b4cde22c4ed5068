import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { create } from 'tar';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Phase } from '../../proto/gen/buildman.js';
import type { BuildView } from '../../src/api/build-service.js';
import { startApiFixture, type ApiFixture } from './api-fixture.js';

let fx: ApiFixture;

beforeAll(async () => {
  fx = await startApiFixture({ maxContextBytes: 64 * 1024 });
});
afterAll(async () => {
  await fx?.close();
});

async function call(method: string, path: string, init: { json?: unknown; body?: RequestInit['body']; type?: string; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { ...init.headers };
  if (init.json !== undefined) headers['content-type'] = 'application/json';
  if (init.type) headers['content-type'] = init.type;
  const res = await fetch(fx.url + path, {
    method,
    headers,
    body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: res.status, type: res.headers.get('content-type') ?? '', text, json };
}

const submit = (json: unknown) => call('POST', '/api/v1/builds', { json });
const urlBuild = (extra: Record<string, unknown> = {}) => ({ repository: 'acme/web', archive_url: 'https://example.com/ctx.tar.gz', ...extra });

async function gzippedContext(bytes = 0): Promise<Buffer> {
  const dir = mkdtempSync(join(tmpdir(), 'buildman-ctx-'));
  writeFileSync(join(dir, 'Dockerfile'), 'FROM scratch\n');
  // Random bytes do not compress, so the upload is as large as asked.
  if (bytes) writeFileSync(join(dir, 'blob'), randomBytes(bytes));
  const chunks: Buffer[] = [];
  for await (const chunk of create({ gzip: true, cwd: dir }, ['.'])) chunks.push(chunk as Buffer);
  rmSync(dir, { recursive: true, force: true });
  return Buffer.concat(chunks);
}

describe('POST /api/v1/builds refuses malformed requests with 400 naming the field', () => {
  const cases: [string, unknown, string | undefined, RegExp][] = [
    ['missing repository', { archive_url: 'https://example.com/c.tgz' }, 'repository', /body\.repository is required/],
    ['bad repository', urlBuild({ repository: 'Acme Web' }), 'repository', /body\.repository must be namespace\/name/],
    ['repository without a namespace', urlBuild({ repository: 'web' }), 'repository', /body\.repository must be namespace\/name/],
    ['both archive_url and git', urlBuild({ git: { url: 'https://example.com/r.git', sha: 'abc' } }), undefined, /exactly one of archive_url or git/],
    ['neither archive_url nor git', { repository: 'acme/web' }, undefined, /exactly one of archive_url or git/],
    ['tags that are not strings', urlBuild({ tags: [1, 2] }), 'tags[0]', /body\.tags\[0\] must be string/],
    ['tags that is not a list', urlBuild({ tags: 'latest' }), 'tags', /body\.tags must be array/],
    ['a bad tag', urlBuild({ tags: ['-bad'] }), 'tags[0]', /must be a Docker tag/],
    ['an ftp archive_url', urlBuild({ archive_url: 'ftp://example.com/c.tgz' }), 'archive_url', /http:\/\/, https:\/\/ or file:\/\//],
    ['git without sha', { repository: 'acme/web', git: { url: 'https://example.com/r.git' } }, 'git.sha', /body\.git\.sha is required/],
    ['an unknown field', urlBuild({ tag: ['v1'] }), 'tag', /body\.tag is not a known field/],
    ['pull credentials without password', urlBuild({ pull_credentials: { username: 'u' } }), 'pull_credentials.password', /is required/],
  ];
  it.each(cases)('%s', async (_name, body, field, message) => {
    const res = await submit(body);
    expect(res.status).toBe(400);
    expect(res.json.error.code).toBe('BAD_REQUEST');
    expect(res.json.error.message).toMatch(message);
    expect(res.json.error.field).toBe(field);
  });

  it('invalid JSON', async () => {
    const res = await call('POST', '/api/v1/builds', { body: '{"repository":', type: 'application/json' });
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/not valid JSON/);
  });

  it('no body at all', async () => {
    const res = await call('POST', '/api/v1/builds');
    expect(res.status).toBe(400);
    expect(res.json.error.message).toMatch(/no body/);
  });

  it('an unsupported media type is 415 and says what to send', async () => {
    const res = await call('POST', '/api/v1/builds', { body: 'x', type: 'image/png' });
    expect(res.status).toBe(415);
    expect(res.json.error.message).toMatch(/application\/json/);
  });

  it('an upload without ?repository', async () => {
    const res = await call('POST', '/api/v1/builds?tag=v1', { body: await gzippedContext(), type: 'application/gzip' });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ field: 'repository' });
    expect(res.json.error.message).toMatch(/query\.repository is required/);
  });

  it('an upload with a bad query parameter', async () => {
    const res = await call('POST', '/api/v1/builds?repository=acme/web&tags=v1', { body: await gzippedContext(), type: 'application/gzip' });
    expect(res.status).toBe(400);
    expect(res.json.error).toMatchObject({ field: 'tags', message: 'query.tags is not a known parameter' });
  });
});

describe('builds', () => {
  it('accepts a JSON build with defaults, then shows and lists it', async () => {
    const res = await submit(urlBuild({ pull_credentials: { username: 'robot', password: 'hunter2-secret' } }));
    expect(res.status).toBe(201);
    const view = res.json as BuildView;
    expect(view).toMatchObject({
      repository: 'acme/web',
      tags: ['latest'],
      dockerfilePath: 'Dockerfile',
      context: '/',
      source: { kind: 'url', url: 'https://example.com/ctx.tar.gz' },
      final: false,
    });
    expect(res.text).not.toContain('hunter2-secret');

    const got = await call('GET', `/api/v1/builds/${view.id}`);
    expect(got.status).toBe(200);
    expect(got.json.id).toBe(view.id);

    const list = await call('GET', '/api/v1/builds?limit=1000');
    expect(list.json.builds.map((b: BuildView) => b.id)).toContain(view.id);
    expect((await call('GET', '/api/v1/builds?limit=1')).json.builds).toHaveLength(1);
    await call('POST', `/api/v1/builds/${view.id}/cancel`);
  });

  it('accepts a git build with its tags', async () => {
    const res = await submit({ repository: 'acme/api', tags: ['v1', 'latest'], git: { url: 'https://example.com/api.git', sha: 'abc123' } });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ tags: ['v1', 'latest'], source: { kind: 'git', url: 'https://example.com/api.git', sha: 'abc123' } });
    await call('POST', `/api/v1/builds/${res.json.id}/cancel`);
  });

  it('streams an uploaded tar.gz context to the service', async () => {
    const archive = await gzippedContext(1000);
    const res = await call('POST', '/api/v1/builds?repository=acme/up&tag=v2&tag=v3&dockerfile_path=Dockerfile&context=/', {
      body: archive,
      type: 'application/gzip',
    });
    expect(res.status).toBe(201);
    expect(res.json).toMatchObject({ repository: 'acme/up', tags: ['v2', 'v3'], source: { kind: 'upload', bytes: archive.length } });
    await call('POST', `/api/v1/builds/${res.json.id}/cancel`);
  });

  it('refuses an upload over the size cap with 413', async () => {
    const res = await call('POST', '/api/v1/builds?repository=acme/big', { body: await gzippedContext(200 * 1024), type: 'application/gzip' });
    expect(res.status).toBe(413);
    expect(res.json.error.code).toBe('PAYLOAD_TOO_LARGE');
    expect(res.json.error.message).toMatch(/BUILDMAN_MAX_CONTEXT_BYTES/);
  });

  it('answers 404 for an unknown build on every build route', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/builds/no-such-build'],
      ['GET', '/api/v1/builds/no-such-build/logs'],
      ['GET', '/api/v1/builds/no-such-build/logs?follow=true'],
      ['POST', '/api/v1/builds/no-such-build/cancel'],
    ] as const) {
      const res = await call(method, path);
      expect(res.status, `${method} ${path}`).toBe(404);
      expect(res.json.error.code).toBe('NOT_FOUND');
      expect(res.json.error.message).toMatch(/no-such-build/);
    }
  });

  it('answers 404 JSON for an unknown route', async () => {
    const res = await call('GET', '/api/v2/things?token=abc');
    expect(res.status).toBe(404);
    expect(res.json.error).toEqual({ code: 'NOT_FOUND', message: expect.stringMatching(/^no route GET \/api\/v2\/things;/) });
  });

  it('cancels a waiting build, then answers 409 to a second cancel', async () => {
    const { json: build } = await submit(urlBuild({ repository: 'acme/cancel' }));
    const first = await call('POST', `/api/v1/builds/${build.id}/cancel`);
    expect(first.status).toBe(200);
    expect(first.json).toMatchObject({ id: build.id, phase: 'cancelled', final: true });
    const second = await call('POST', `/api/v1/builds/${build.id}/cancel`);
    expect(second.status).toBe(409);
    expect(second.json.error.code).toBe('CONFLICT');
  });
});

describe('logs', () => {
  it('returns Quay’s {start, total, logs} and refuses a bad start offset', async () => {
    const { json: build } = await submit(urlBuild({ repository: 'acme/logs' }));
    await call('POST', `/api/v1/builds/${build.id}/cancel`);
    const all = await call('GET', `/api/v1/builds/${build.id}/logs`);
    expect(all.status).toBe(200);
    expect(all.json).toMatchObject({ start: 0, total: expect.any(Number), logs: expect.any(Array) });
    expect(all.json.logs.length).toBe(all.json.total);
    const tail = await call('GET', `/api/v1/builds/${build.id}/logs?start=1`);
    expect(tail.json).toMatchObject({ start: 1, total: all.json.total, logs: all.json.logs.slice(1) });

    for (const [start, message] of [
      ['-1', 'query.start must be >= 0'],
      ['abc', 'query.start must be integer'],
      ['1.5', 'query.start must be integer'],
    ]) {
      const res = await call('GET', `/api/v1/builds/${build.id}/logs?start=${start}`);
      expect(res.status).toBe(400);
      expect(res.json.error).toEqual({ code: 'BAD_REQUEST', message, field: 'start' });
    }
  });

  it('follows as NDJSON: existing entries, live ones, then an end line with the final build', async () => {
    const { json: build } = await submit(urlBuild({ repository: 'acme/follow' }));
    const res = await fetch(`${fx.url}/api/v1/builds/${build.id}/logs?follow=true`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/x-ndjson/);
    const reading = res.text();
    await fx.playWorker(build.id, [Phase.BUILDING, Phase.PUSHING, Phase.COMPLETE]);
    const lines = (await reading)
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line));

    const last = lines.at(-1);
    expect(last).toMatchObject({ end: true, build: { id: build.id, phase: 'complete', final: true } });
    const entries = lines.slice(0, -1);
    expect(entries.map((l) => l.index)).toEqual(entries.map((_, i) => i));
    const messages = entries.map((l) => l.entry.message);
    expect(messages).toContain('building');
    expect(entries.map((l) => l.entry)).toContainEqual(expect.objectContaining({ message: 'Step 1/1 : FROM scratch\n', type: 'command' }));
    expect(messages.at(-1)).toBe('complete');

    // From an offset, on a final build: the rest of the entries and the end line at once.
    const again = await call('GET', `/api/v1/builds/${build.id}/logs?follow=true&start=${entries.length - 1}`);
    const tail = again.text.trim().split('\n').map((line) => JSON.parse(line));
    expect(tail).toEqual([{ index: entries.length - 1, entry: entries.at(-1).entry }, last]);
  });

  it('stops following when the client goes away', async () => {
    const { json: build } = await submit(urlBuild({ repository: 'acme/leave' }));
    const abort = new AbortController();
    const res = await fetch(`${fx.url}/api/v1/builds/${build.id}/logs?follow=true`, { signal: abort.signal });
    const reader = res.body!.getReader();
    await reader.read();
    abort.abort();
    // The server is still healthy and the build can still be cancelled.
    const cancelled = await call('POST', `/api/v1/builds/${build.id}/cancel`);
    expect(cancelled.json.phase).toBe('cancelled');
  });
});

describe('context downloads for workers', () => {
  it('refuses a missing or bad token with 401, and serves the archive to the job token', async () => {
    const archive = await gzippedContext(100);
    const { json: build } = await call('POST', '/api/v1/builds?repository=acme/ctx', { body: archive, type: 'application/gzip' });

    const none = await call('GET', `/api/v1/builds/${build.id}/context`);
    expect(none.status).toBe(401);
    expect(none.json.error).toMatchObject({ code: 'UNAUTHORIZED', field: 'token' });

    const bad = await call('GET', `/api/v1/builds/${build.id}/context?token=not.a.jwt`);
    expect(bad.status).toBe(401);
    expect(bad.json.error.message).toMatch(/Invalid build token/);

    const badBearer = await call('GET', `/api/v1/builds/${build.id}/context`, { headers: { authorization: 'Bearer not.a.jwt' } });
    expect(badBearer.status).toBe(401);

    const jobToken = await fx.playWorker(build.id, []);
    for (const init of [{ query: `?token=${jobToken}` }, { query: '', headers: { authorization: `Bearer ${jobToken}` } }]) {
      const res = await fetch(`${fx.url}/api/v1/builds/${build.id}/context${init.query}`, { headers: init.headers });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/octet-stream');
      expect(Buffer.from(await res.arrayBuffer()).equals(archive)).toBe(true);
    }
    // Another build's job token does not open this context.
    const { json: other } = await submit(urlBuild({ repository: 'acme/other' }));
    const otherToken = await fx.playWorker(other.id, []);
    expect((await call('GET', `/api/v1/builds/${build.id}/context?token=${otherToken}`)).status).toBe(401);

    await call('POST', `/api/v1/builds/${build.id}/cancel`);
    await call('POST', `/api/v1/builds/${other.id}/cancel`);
  });

  it('never logs a query string (the context URL carries the job token)', async () => {
    await call('GET', '/api/v1/builds/some-build/context?token=SECRET-TOKEN-VALUE');
    await call('GET', '/nowhere?token=SECRET-TOKEN-VALUE');
    expect(fx.httpLog.some((line) => line.includes('/api/v1/builds/some-build/context'))).toBe(true);
    expect(fx.httpLog.join('\n')).not.toContain('SECRET-TOKEN-VALUE');
  });
});

describe('health', () => {
  it('is 200 with ok: true', async () => {
    const res = await call('GET', '/health');
    expect(res.status).toBe(200);
    expect(res.json.ok).toBe(true);
  });
});
