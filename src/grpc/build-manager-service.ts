import * as grpc from '@grpc/grpc-js';
import {
  Phase,
  type BuildManagerServer,
  type BuildPack,
  type SetPhaseRequest_PullMetadata,
} from '../../proto/gen/buildman.js';
import type { PullMetadata, WorkerPhase } from '../../machines/job-events.js';
import { TokenError } from '../errors/buildman-error.js';
import type { BuildTokenContext, BuildTokenType } from '../tokens/build-tokens.js';
import type { Logger } from '../util/logger.js';
import { quayDatetime } from '../runtime/build-phase.js';
import { unwrapLogMessage } from './log-unwrap.js';

/** What the gRPC layer needs from the manager, per verified build. */
export interface WorkerGateway {
  /** The job key a token for this build must name (a token for another build or prefix is refused). */
  jobKey(buildId: string): string;
  verify(token: string, type: BuildTokenType): Promise<BuildTokenContext>;
  register(buildId: string): Promise<BuildPack>;
  heartbeat(buildId: string): Promise<boolean>;
  setPhase(buildId: string, phase: WorkerPhase, pullMetadata?: PullMetadata): Promise<boolean>;
  appendLog(buildId: string, entry: ReturnType<typeof unwrapLogMessage> & object): Promise<boolean>;
  cachedTag(buildId: string): Promise<string>;
}

const PHASES: Record<Phase, WorkerPhase | undefined> = {
  [Phase.WAITING]: 'waiting',
  [Phase.UNPACKING]: 'unpacking',
  [Phase.PULLING]: 'pulling',
  [Phase.BUILDING]: 'building',
  [Phase.PUSHING]: 'pushing',
  [Phase.COMPLETE]: 'complete',
  [Phase.ERROR]: 'error',
  [Phase.UNRECOGNIZED]: undefined,
};

/** A gRPC error with a status, as grpc-js expects from handlers. */
export function grpcError(code: grpc.status, details: string): grpc.ServiceError {
  return Object.assign(new Error(details), { code, details, metadata: new grpc.Metadata() });
}

/**
 * Quay's BuildManager service (reference §1.3). Every call but Ping checks a token of the
 * expected type; a failure is UNAUTHENTICATED with Quay's wording, and the job is not touched.
 */
export function buildManagerService(gw: WorkerGateway, logger: Logger): BuildManagerServer {
  const log = logger.child({ component: 'grpc' });

  /** Verifies a token and that it names this installation's job key for its build. */
  async function authenticate(token: string, type: BuildTokenType): Promise<BuildTokenContext> {
    const ctx = await gw.verify(token, type);
    if (ctx.job_id !== gw.jobKey(ctx.build_id)) throw new TokenError('token was issued for another job');
    return ctx;
  }

  function authError(err: unknown): grpc.ServiceError {
    if (err instanceof TokenError) return grpcError(grpc.status.UNAUTHENTICATED, `Invalid build token: ${err.message}`);
    return grpcError(grpc.status.UNAUTHENTICATED, `Unknown build token exception: ${err instanceof Error ? err.message : String(err)}`);
  }

  /** Streams reuse the last verified token until it expires: a worker sends the same one every time. */
  function streamAuth(type: BuildTokenType) {
    let cached: { token: string; ctx: BuildTokenContext } | undefined;
    return async (token: string) => {
      if (cached?.token === token) return cached.ctx;
      const ctx = await authenticate(token, type);
      cached = { token, ctx };
      return ctx;
    };
  }

  function internal(err: unknown): grpc.ServiceError {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'number') return err as grpc.ServiceError;
    const retryable = (err as { retryable?: boolean }).retryable;
    return grpcError(retryable ? grpc.status.UNAVAILABLE : grpc.status.INTERNAL, err instanceof Error ? err.message : String(err));
  }

  return {
    ping(_call, callback) {
      callback(null, { reply: 'pong' });
    },

    registerBuildJob(call, callback) {
      void (async () => {
        let ctx: BuildTokenContext;
        try {
          ctx = await authenticate(call.request.registerJwt, 'build_job_registration');
        } catch (err) {
          return callback(authError(err));
        }
        try {
          callback(null, await gw.register(ctx.build_id));
        } catch (err) {
          log.warn({ buildId: ctx.build_id, err: (err as Error).message }, 'registration refused');
          callback(internal(err));
        }
      })();
    },

    heartbeat(call) {
      const auth = streamAuth('build_job_token');
      let chain = Promise.resolve();
      call.on('data', (req: { jobJwt: string }) => {
        // Handle messages one at a time so replies keep the order of requests.
        chain = chain.then(async () => {
          let ctx: BuildTokenContext;
          try {
            ctx = await auth(req.jobJwt);
          } catch (err) {
            call.emit('error', authError(err));
            return;
          }
          let reply = false;
          try {
            reply = await gw.heartbeat(ctx.build_id);
          } catch (err) {
            return void call.emit('error', internal(err));
          }
          if (!call.writableEnded) call.write({ reply });
        });
      });
      call.on('end', () => void chain.then(() => call.end()));
      call.on('error', () => {});
    },

    setPhase(call, callback) {
      void (async () => {
        const { jobJwt, sequenceNumber, phase, pullMetadata } = call.request;
        let ctx: BuildTokenContext;
        try {
          ctx = await authenticate(jobJwt, 'build_job_token');
        } catch (err) {
          return callback(authError(err));
        }
        const workerPhase = PHASES[phase];
        if (!workerPhase) return callback(grpcError(grpc.status.INVALID_ARGUMENT, `unknown phase ${phase}`));
        try {
          const success = await gw.setPhase(ctx.build_id, workerPhase, toPullMetadata(pullMetadata));
          callback(null, { success, sequenceNumber });
        } catch (err) {
          callback(internal(err));
        }
      })();
    },

    logMessage(call) {
      const auth = streamAuth('build_job_token');
      // Quay keeps the last sequence number per stream: a repeat or a step back is refused.
      let lastSequence: number | undefined;
      let chain = Promise.resolve();
      call.on('data', (req: { jobJwt: string; sequenceNumber: number; logMessage: string }) => {
        chain = chain.then(async () => {
          let ctx: BuildTokenContext;
          try {
            ctx = await auth(req.jobJwt);
          } catch (err) {
            call.emit('error', authError(err));
            return;
          }
          const write = (success: boolean, sequenceNumber: number) => {
            if (!call.writableEnded) call.write({ success, sequenceNumber });
          };
          try {
            await gw.heartbeat(ctx.build_id);
            if (lastSequence !== undefined && req.sequenceNumber <= lastSequence) return write(false, 0);
            lastSequence = req.sequenceNumber;
            const entry = unwrapLogMessage(req.logMessage, quayDatetime(Date.now()));
            if (!entry) return write(false, req.sequenceNumber);
            write(await gw.appendLog(ctx.build_id, entry), req.sequenceNumber);
          } catch (err) {
            call.emit('error', internal(err));
          }
        });
      });
      call.on('end', () => void chain.then(() => call.end()));
      call.on('error', () => {});
    },

    determineCachedTag(call, callback) {
      void (async () => {
        let ctx: BuildTokenContext;
        try {
          ctx = await authenticate(call.request.jobJwt, 'build_job_token');
        } catch (err) {
          return callback(authError(err));
        }
        try {
          callback(null, { CachedTag: await gw.cachedTag(ctx.build_id) });
        } catch (err) {
          callback(internal(err));
        }
      })();
    },
  };
}

function toPullMetadata(m: SetPhaseRequest_PullMetadata | undefined): PullMetadata | undefined {
  if (!m) return undefined;
  const out: PullMetadata = {};
  if (m.registryUrl) out.registry_url = m.registryUrl;
  if (m.baseImage) out.base_image = m.baseImage;
  if (m.baseImageTag) out.base_image_tag = m.baseImageTag;
  if (m.pullUsername) out.pull_username = m.pullUsername;
  return out;
}
