import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as tar from 'tar';
import {
  BuildManagerService,
  Phase,
  type BuildManagerServer,
  type BuildPack,
  type CachedTagRequest,
  type LogMessageRequest,
  type SetPhaseRequest,
} from '../../proto/gen/buildman.js';

export const REGISTRATION_TOKEN = 'registration-token-0123456789';
export const JOB_TOKEN = 'job-token-abcdefghijklmnop';

export interface RecordingOptions {
  /** The build pack RegisterBuildJob answers with (job_jwt is filled in). */
  pack: Partial<BuildPack>;
  /** Refuse registration with this status instead. */
  refuse?: { code: grpc.status; details: string };
  /** The reply to the n-th heartbeat (0-based). Default: always true. */
  heartbeatReply?: (n: number) => boolean;
  cachedTag?: string;
}

export interface Recorded {
  /** Every call in arrival order: `Ping`, `LogMessage`, `RegisterBuildJob`, `Heartbeat`, `SetPhase:<PHASE>`, `DetermineCachedTag`, `Heartbeat:end`. */
  calls: string[];
  phases: SetPhaseRequest[];
  logs: LogMessageRequest[];
  heartbeats: Array<{ at: number; jobJwt: string }>;
  cachedTagRequests: CachedTagRequest[];
  /** Job tokens seen on calls that must carry one; all should equal JOB_TOKEN. */
  jobTokens: string[];
}

export interface RecordingManager {
  address: string;
  rec: Recorded;
  /** The log lines' payloads, parsed. */
  messages(): Array<Record<string, string>>;
  phaseNames(): string[];
  stop(): Promise<void>;
}

/**
 * A BuildManager gRPC server on 127.0.0.1 that answers like Quay's and records every call, so
 * tests can check what the worker puts on the wire.
 */
export async function startRecordingManager(opts: RecordingOptions): Promise<RecordingManager> {
  const rec: Recorded = { calls: [], phases: [], logs: [], heartbeats: [], cachedTagRequests: [], jobTokens: [] };
  const server = new grpc.Server();
  const impl: BuildManagerServer = {
    ping(_call, cb) {
      rec.calls.push('Ping');
      cb(null, { reply: 'pong' });
    },
    registerBuildJob(call, cb) {
      rec.calls.push('RegisterBuildJob');
      if (opts.refuse) return cb({ code: opts.refuse.code, details: opts.refuse.details });
      if (call.request.registerJwt !== REGISTRATION_TOKEN) {
        return cb({ code: grpc.status.UNAUTHENTICATED, details: 'Invalid build token: Signature verification failed' });
      }
      const pack: BuildPack = {
        context: '',
        dockerfilePath: '',
        repository: 'test/hello',
        registry: '',
        pullToken: '',
        pushToken: '',
        tagNames: ['latest'],
        baseImage: { username: '', password: '' },
        ...opts.pack,
        jobJwt: JOB_TOKEN,
      };
      cb(null, pack);
    },
    heartbeat(call) {
      rec.calls.push('Heartbeat');
      call.on('data', (req: { jobJwt: string }) => {
        const n = rec.heartbeats.length;
        rec.heartbeats.push({ at: Date.now(), jobJwt: req.jobJwt });
        rec.jobTokens.push(req.jobJwt);
        call.write({ reply: opts.heartbeatReply ? opts.heartbeatReply(n) : true });
      });
      call.on('end', () => {
        rec.calls.push('Heartbeat:end');
        call.end();
      });
      call.on('error', () => {});
      call.on('cancelled', () => rec.calls.push('Heartbeat:end'));
    },
    setPhase(call, cb) {
      rec.calls.push(`SetPhase:${Phase[call.request.phase]}`);
      rec.phases.push(call.request);
      rec.jobTokens.push(call.request.jobJwt);
      cb(null, { success: true, sequenceNumber: call.request.sequenceNumber });
    },
    logMessage(call) {
      rec.calls.push('LogMessage');
      call.on('data', (req: LogMessageRequest) => {
        rec.logs.push(req);
        rec.jobTokens.push(req.jobJwt);
        call.write({ success: true, sequenceNumber: req.sequenceNumber });
      });
      call.on('end', () => call.end());
      call.on('error', () => {});
    },
    determineCachedTag(call, cb) {
      rec.calls.push('DetermineCachedTag');
      rec.cachedTagRequests.push(call.request);
      rec.jobTokens.push(call.request.jobJwt);
      cb(null, { CachedTag: opts.cachedTag ?? '' });
    },
  };
  server.addService(BuildManagerService, impl);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    address: `127.0.0.1:${port}`,
    rec,
    messages: () => rec.logs.map((l) => JSON.parse(l.logMessage) as Record<string, string>),
    phaseNames: () => rec.phases.map((p) => Phase[p.phase]),
    stop: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 1000).unref();
      }),
  };
}

/**
 * The worker's environment for a build against `manager`: plaintext gRPC, buildah with a private
 * store and image folder under `dir`, so no test touches /var/lib/containers.
 */
export function workerEnv(manager: RecordingManager, dir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return {
    SERVER: manager.address,
    TOKEN: REGISTRATION_TOKEN,
    INSECURE: 'true',
    CONTAINER_RUNTIME: 'buildah',
    BUILD_UUID: 'build-under-test',
    PATH: process.env.PATH,
    BUILDMAN_STORAGE_ROOT: join(dir, 'containers'),
    BUILDMAN_IMAGE_DIR: join(dir, 'images'),
    ...extra,
  };
}

/** Writes `files` into a folder and packs them as a tar (gzipped unless told otherwise); returns a file:// URL. */
export async function makePackage(dir: string, files: Record<string, string | Buffer>, opts: { gzip?: boolean } = {}): Promise<string> {
  const src = join(dir, 'src');
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(dirname(join(src, name)), { recursive: true });
    writeFileSync(join(src, name), content, { mode: 0o755 });
  }
  const file = join(dir, opts.gzip === false ? 'package.tar' : 'package.tar.gz');
  await tar.c({ file, cwd: src, gzip: opts.gzip !== false, portable: true }, Object.keys(files));
  return pathToFileURL(file).href;
}
