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
  /** The liveness refresh a log line gives: like a heartbeat, but a burst of lines refreshes once. */
  touchFromLog(buildId: string): Promise<boolean>;
  setPhase(buildId: string, phase: WorkerPhase, pullMetadata?: PullMetadata): Promise<boolean>;
  /** `jobAlive`: what the heartbeat this log line also counted as said, so the job is not read twice. */
  appendLog(buildId: string, entry: ReturnType<typeof unwrapLogMessage> & object, jobAlive: boolean): Promise<boolean>;
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

  /**
   * A bidi stream of job-token requests: each message is authenticated (the same token is
   * verified once), handled one at a time so replies keep the order of requests, and a failure
   * ends the stream with its status.
   */
  function serveStream<Req extends { jobJwt: string }, Res>(
    call: grpc.ServerDuplexStream<Req, Res>,
    handle: (buildId: string, req: Req) => Promise<Res>,
  ): void {
    const auth = streamAuth('build_job_token');
    let chain = Promise.resolve();
    call.on('data', (req: Req) => {
      chain = chain.then(async () => {
        let ctx: BuildTokenContext;
        try {
          ctx = await auth(req.jobJwt);
        } catch (err) {
          return void call.emit('error', authError(err));
        }
        try {
          const reply = await handle(ctx.build_id, req);
          if (!call.writableEnded) call.write(reply);
        } catch (err) {
          call.emit('error', internal(err));
        }
      });
    });
    call.on('end', () => void chain.then(() => call.end()));
    call.on('error', () => {});
  }

  /** A unary call: authenticate `token` as `type`, then answer with `handle` or its error. */
  function serveUnary<Res>(
    token: string,
    type: BuildTokenType,
    callback: grpc.sendUnaryData<Res>,
    handle: (buildId: string) => Promise<Res>,
  ): void {
    void (async () => {
      let ctx: BuildTokenContext;
      try {
        ctx = await authenticate(token, type);
      } catch (err) {
        return callback(authError(err));
      }
      try {
        callback(null, await handle(ctx.build_id));
      } catch (err) {
        log.warn({ buildId: ctx.build_id, err: (err as Error).message }, 'worker call failed');
        callback(internal(err));
      }
    })();
  }

  return {
    ping(_call, callback) {
      callback(null, { reply: 'pong' });
    },

    registerBuildJob(call, callback) {
      serveUnary(call.request.registerJwt, 'build_job_registration', callback, (buildId) => gw.register(buildId));
    },

    heartbeat(call) {
      serveStream(call, async (buildId) => ({ reply: await gw.heartbeat(buildId) }));
    },

    setPhase(call, callback) {
      const { jobJwt, sequenceNumber, phase, pullMetadata } = call.request;
      serveUnary(jobJwt, 'build_job_token', callback, async (buildId) => {
        const workerPhase = PHASES[phase];
        if (!workerPhase) throw grpcError(grpc.status.INVALID_ARGUMENT, `unknown phase ${phase}`);
        return { success: await gw.setPhase(buildId, workerPhase, toPullMetadata(pullMetadata)), sequenceNumber };
      });
    },

    logMessage(call) {
      // Quay keeps the last sequence number per stream: a repeat or a step back is refused.
      let lastSequence: number | undefined;
      serveStream(call, async (buildId, req) => {
        // Log traffic keeps the job alive, as in Quay; its answer also says whether the job is live.
        const alive = await gw.touchFromLog(buildId);
        if (lastSequence !== undefined && req.sequenceNumber <= lastSequence) return { success: false, sequenceNumber: 0 };
        lastSequence = req.sequenceNumber;
        const entry = unwrapLogMessage(req.logMessage, quayDatetime(Date.now()));
        if (!entry) return { success: false, sequenceNumber: req.sequenceNumber };
        return { success: await gw.appendLog(buildId, entry, alive), sequenceNumber: req.sequenceNumber };
      });
    },

    determineCachedTag(call, callback) {
      serveUnary(call.request.jobJwt, 'build_job_token', callback, async (buildId) => ({ CachedTag: await gw.cachedTag(buildId) }));
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
