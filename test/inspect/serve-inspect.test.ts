import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { CliContext } from '../../src/cli/cli-context.js';
import { runCli } from '../../src/cli/program.js';
import { connectInspector, rootDone } from './inspect-client.js';

const work = mkdtempSync(join(tmpdir(), 'buildman-serve-inspect-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

describe('buildman serve --inspect', () => {
  it('prints the inspection URL and streams a build submitted over the HTTP API', async () => {
    let stdout = '';
    let ready: (urls: { http: string; ws: string }) => void;
    const listening = new Promise<{ http: string; ws: string }>((resolve) => (ready = resolve));
    const ctx: CliContext = {
      stdout: (text) => {
        stdout += text;
        const http = /^HTTP API on (\S+)$/m.exec(stdout)?.[1];
        const ws = /^Live inspection on (ws:\/\/127\.0\.0\.1:\d+) /m.exec(stdout)?.[1];
        if (http && ws) ready({ http, ws });
      },
      stderr: () => {},
      env: {},
      exitCode: 0,
    };
    const args = ['serve', '--grpc-port', '0', '--http-port', '0', '--inspect', '0', '--data-dir', join(work, 'data'), '--log-level', 'silent'];
    const running = runCli(args, ctx);
    const urls = await listening;
    const client = await connectInspector(urls.ws);
    try {
      const res = await fetch(`${urls.http}/api/v1/builds`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ repository: 'demo/inspect', archive_url: 'https://example.com/ctx.tar.gz' }),
      });
      const build = (await res.json()) as { id: string };
      await client.until((events) => events.some((e) => e.type === '@xstate.actor' && e.name === build.id));
      // The embedded default's worker cannot fetch that archive: cancel rather than wait for it.
      await fetch(`${urls.http}/api/v1/builds/${build.id}/cancel`, { method: 'POST' });
      await client.until((events) => rootDone(events, build.id));
    } finally {
      client.close();
      process.emit('SIGTERM', 'SIGTERM');
    }
    expect(await running).toBe(0);
    await expect(fetch(urls.ws.replace('ws:', 'http:'))).rejects.toThrow();
  });
});
