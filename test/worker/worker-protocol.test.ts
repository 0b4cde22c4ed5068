import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import * as grpc from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runWorker } from '../../src/worker/main.js';
import { JOB_TOKEN, REGISTRATION_TOKEN, startRecordingManager, workerEnv, type RecordingManager } from './recording-manager.js';

// Wire behaviour that needs no container runtime: registration, failures before the build, heartbeats.

let dir: string;
let manager: RecordingManager | undefined;
let hanging: { url: string; close(): Promise<void> } | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'buildman-worker-test-'));
});
afterEach(async () => {
  await manager?.stop();
  await hanging?.close();
  manager = hanging = undefined;
  rmSync(dir, { recursive: true, force: true });
});

const env = (extra: NodeJS.ProcessEnv = {}) => workerEnv(manager!, dir, extra);

/** An HTTP server that accepts package downloads and never answers: the build stays in UNPACKING. */
async function startHangingServer(): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer(() => {});
  server.on('connection', (s) => sockets.add(s));
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}/package.tar.gz`,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

describe('worker wire protocol (no container runtime needed)', () => {
  it('exits 2 with the server message when registration is refused, after Ping and the log stream', async () => {
    manager = await startRecordingManager({
      pack: {},
      refuse: { code: grpc.status.UNAUTHENTICATED, details: 'Invalid build token: Signature has expired' },
    });
    const lines: string[] = [];
    const result = await runWorker(env(), { log: (l) => lines.push(l) });
    expect(result.exitCode).toBe(2);
    expect(result.outcome).toBe('unregistered');
    expect(result.message).toContain('Invalid build token: Signature has expired');
    expect(result.message).toContain('UNAUTHENTICATED');
    expect(manager.rec.calls.slice(0, 3)).toEqual(['Ping', 'LogMessage', 'RegisterBuildJob']);
    expect(manager.rec.phases).toEqual([]);
    expect(lines.join('\n')).not.toContain(REGISTRATION_TOKEN);
  });

  it('exits 2 without SERVER, naming the variable', async () => {
    const result = await runWorker({ TOKEN: 'x' }, { log: () => {} });
    expect(result.exitCode).toBe(2);
    expect(result.message).toMatch(/^SERVER is not set/);
  });

  it('reports a missing buildah as an error log naming the install command, then ERROR', async () => {
    manager = await startRecordingManager({ pack: { packageUrl: 'file:///nonexistent.tar' } });
    const emptyBin = join(dir, 'empty-bin');
    const result = await runWorker(env({ PATH: emptyBin }), { log: () => {} });
    expect(result.exitCode).toBe(1);
    expect(result.outcome).toBe('error');
    const errors = manager.messages().filter((m) => 'error' in m);
    expect(errors).toHaveLength(1);
    expect(errors[0].error).toContain('buildah is not installed');
    expect(errors[0].error).toContain('apt-get install buildah');
    // Failing fast: nothing was unpacked, the only phase is ERROR, carrying the job token.
    expect(manager.phaseNames()).toEqual(['ERROR']);
    expect(manager.rec.phases[0].sequenceNumber).toBe(1);
    expect(manager.rec.phases[0].jobJwt).toBe(JOB_TOKEN);
  });

  const dockerEngineUp = spawnSync('docker', ['version', '--format', '{{.Server.Version}}'], { encoding: 'utf8' }).status === 0;
  it.skipIf(dockerEngineUp)('CONTAINER_RUNTIME=docker without a Docker engine fails with what to install', async () => {
    manager = await startRecordingManager({ pack: { packageUrl: 'file:///nonexistent.tar' } });
    const result = await runWorker(
      env({ CONTAINER_RUNTIME: 'docker', DOCKER_HOST: `unix://${join(dir, 'no-docker.sock')}` }),
      { log: () => {} },
    );
    expect(result.exitCode).toBe(1);
    const error = manager.messages().find((m) => 'error' in m)?.error ?? '';
    expect(error).toContain('CONTAINER_RUNTIME=docker');
    expect(error).toContain('apt-get install');
    expect(manager.phaseNames()).toEqual(['ERROR']);
  });
});

// The worker checks the runtime before UNPACKING, so reaching the (hanging) download needs buildah installed.
const buildahInstalled = spawnSync('buildah', ['--version']).status === 0;

describe.skipIf(!buildahInstalled)('worker aborts while unpacking', () => {
  it('aborts the build after 3 heartbeats answered reply=false, retrying each at once', async () => {
    hanging = await startHangingServer();
    // The first heartbeat is accepted, so the worker is stuck in UNPACKING when the rejections come.
    manager = await startRecordingManager({ pack: { packageUrl: hanging.url }, heartbeatReply: (n) => n === 0 });
    const result = await runWorker(env(), { log: () => {} });
    expect(result.exitCode).toBe(1);
    expect(result.message).toContain('rejected 3 heartbeats');
    const beats = manager.rec.heartbeats;
    expect(beats).toHaveLength(4);
    // About 2 s after an accepted beat; each rejection is retried at once.
    expect(beats[1].at - beats[0].at).toBeGreaterThan(1500);
    expect(beats[3].at - beats[1].at).toBeLessThan(500);
    expect(beats.every((b) => b.jobJwt === JOB_TOKEN)).toBe(true);
    expect(manager.phaseNames()).toEqual(['UNPACKING', 'ERROR']);
    expect(manager.messages().at(-1)).toEqual({ error: expect.stringContaining('rejected 3 heartbeats') });
  });

  it('stops promptly on its abort signal without reporting a phase', async () => {
    hanging = await startHangingServer();
    manager = await startRecordingManager({ pack: { packageUrl: hanging.url } });
    const stop = new AbortController();
    const running = runWorker(env(), { signal: stop.signal, log: () => {} });
    const deadline = Date.now() + 10_000;
    while (!manager.rec.calls.includes('SetPhase:UNPACKING') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const stoppedAt = Date.now();
    stop.abort();
    const result = await running;
    expect(result.exitCode).toBe(143);
    expect(result.outcome).toBe('stopped');
    expect(Date.now() - stoppedAt).toBeLessThan(2000);
    expect(manager.phaseNames()).toEqual(['UNPACKING']);
  });
});
