import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import {
  BuildManagerClient,
  Phase,
  phaseToJSON,
  type BuildPack,
  type SetPhaseRequest_PullMetadata,
} from '../../proto/gen/buildman.js';
import { LogStream } from './log-stream.js';
import { RegistrationFailure } from './worker-errors.js';
import type { WorkerSettings } from './worker-settings.js';

/** quay-builder's deadline for the dial and for each unary call. */
const CALL_DEADLINE_MS = 10_000;

type UnaryMethod<Req, Res> = (
  request: Req,
  metadata: grpc.Metadata,
  options: Partial<grpc.CallOptions>,
  callback: (error: grpc.ServiceError | null, response: Res) => void,
) => grpc.ClientUnaryCall;

/** One unary call with a deadline; aborting the signal cancels it. */
function unary<Req, Res>(method: UnaryMethod<Req, Res>, request: Req, signal?: AbortSignal): Promise<Res> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const call = method(request, new grpc.Metadata(), { deadline: Date.now() + CALL_DEADLINE_MS }, (err, res) => {
      signal?.removeEventListener('abort', onAbort);
      if (signal?.aborted) reject(signal.reason);
      else if (err) reject(err);
      else resolve(res);
    });
    const onAbort = () => call.cancel();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The text a gRPC error carries for a person: the server's details when it sent some. */
export function grpcErrorText(err: unknown): string {
  const e = err as Partial<grpc.ServiceError>;
  if (typeof e?.code === 'number') {
    const name = grpc.status[e.code] ?? String(e.code);
    return `${name}: ${e.details || e.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/**
 * The worker's side of the build-manager protocol: dial, Ping, the log stream, registration,
 * SetPhase with its own sequence numbers, DetermineCachedTag.
 */
export class ManagerSession {
  private phaseSequence = 0;
  jobToken = '';

  private constructor(
    readonly client: BuildManagerClient,
    readonly logs: LogStream,
    private readonly say: (line: string) => void,
  ) {}

  /** Dials (10 s), pings, and opens the log stream, in quay-builder's order. */
  static async connect(
    settings: WorkerSettings,
    say: (line: string) => void,
    scrub: (text: string) => string,
    signal?: AbortSignal,
  ): Promise<ManagerSession> {
    let credentials: grpc.ChannelCredentials;
    if (settings.insecure) credentials = grpc.credentials.createInsecure();
    else {
      const ca = settings.tlsCertPath ? await readFile(settings.tlsCertPath) : undefined;
      credentials = grpc.credentials.createSsl(ca);
    }
    const client = new BuildManagerClient(settings.server, credentials);
    try {
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => reject(signal!.reason);
        signal?.addEventListener('abort', onAbort, { once: true });
        client.waitForReady(Date.now() + CALL_DEADLINE_MS, (err) => {
          signal?.removeEventListener('abort', onAbort);
          if (err) reject(err);
          else resolve();
        });
      });
      signal?.throwIfAborted();
      await unary(client.ping.bind(client), {}, signal);
    } catch (err) {
      client.close();
      if (signal?.aborted) throw signal.reason;
      throw new RegistrationFailure(`cannot reach the build manager at ${settings.server}: ${grpcErrorText(err)}`);
    }
    const logs = new LogStream(client, say, scrub);
    logs.open();
    return new ManagerSession(client, logs, say);
  }

  /** RegisterBuildJob; a refusal becomes a `RegistrationFailure` carrying the server's message. */
  async register(registrationToken: string, signal?: AbortSignal): Promise<BuildPack> {
    let pack: BuildPack;
    try {
      pack = await unary(this.client.registerBuildJob.bind(this.client), { registerJwt: registrationToken }, signal);
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      throw new RegistrationFailure(`the build manager refused the registration: ${grpcErrorText(err)}`);
    }
    this.jobToken = pack.jobJwt;
    this.logs.jobToken = pack.jobJwt;
    return pack;
  }

  /**
   * SetPhase with the next sequence number (from 1). Returns whether the manager accepted it;
   * a mismatched echo is only a warning, as the manager does no sequence checks of its own.
   */
  async setPhase(phase: Phase, pullMetadata?: SetPhaseRequest_PullMetadata, signal?: AbortSignal): Promise<boolean> {
    const sequenceNumber = ++this.phaseSequence;
    const res = await unary(
      this.client.setPhase.bind(this.client),
      {
        jobJwt: this.jobToken,
        sequenceNumber,
        phase,
        // quay-builder always sends the message, empty outside PULLING.
        pullMetadata: pullMetadata ?? { registryUrl: '', baseImage: '', baseImageTag: '', pullUsername: '' },
      },
      signal,
    );
    if (res.sequenceNumber !== sequenceNumber) {
      this.say(`warning: SetPhase ${phaseToJSON(phase)} sent sequence ${sequenceNumber}, the manager echoed ${res.sequenceNumber}`);
    }
    return res.success;
  }

  async determineCachedTag(baseImageName: string, baseImageTag: string, baseImageId: string, signal?: AbortSignal): Promise<string> {
    const res = await unary(
      this.client.determineCachedTag.bind(this.client),
      { jobJwt: this.jobToken, baseImageName, baseImageTag, baseImageId },
      signal,
    );
    return res.CachedTag;
  }

  close(): void {
    this.logs.close();
    // Give the stream's end a moment to leave before the channel goes.
    setTimeout(() => this.client.close(), 200).unref();
  }
}
