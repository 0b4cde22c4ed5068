import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import type { BuildManagerClient, HeartbeatRequest, HeartbeatResponse } from '../../proto/gen/buildman.js';

export interface HeartbeatOptions {
  /** Pause after an accepted heartbeat. quay-builder: about 2 s. */
  intervalMs?: number;
  /** `reply=false` answers in a row that end the build. quay-builder: 3. */
  maxRejections?: number;
  /** Called once when the manager rejected `maxRejections` heartbeats in a row. */
  onRejected: (message: string) => void;
  say: (line: string) => void;
}

/**
 * The Heartbeat bidi loop: send `{job_jwt}`, wait for the reply, sleep, repeat. A `reply=false`
 * is retried at once; after `maxRejections` of them the build is aborted. A broken stream is
 * reopened after the usual pause (the manager may have restarted); that is not a rejection.
 */
export class HeartbeatLoop {
  private stopped = false;
  private call: ClientDuplexStream<HeartbeatRequest, HeartbeatResponse> | undefined;
  private wake: (() => void) | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly client: BuildManagerClient,
    private readonly jobToken: string,
    private readonly opts: HeartbeatOptions,
  ) {
    this.done = this.loop();
  }

  /** Ends the loop and its stream; resolves when the loop has exited. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    const call = this.call;
    this.call = undefined;
    call?.end();
    call?.cancel();
    await this.done;
  }

  private async loop(): Promise<void> {
    const intervalMs = this.opts.intervalMs ?? 2000;
    const maxRejections = this.opts.maxRejections ?? 3;
    let rejections = 0;
    while (!this.stopped) {
      let reply: boolean;
      try {
        reply = await this.beat();
      } catch (err) {
        if (this.stopped) return;
        const e = err as ServiceError;
        this.opts.say(`warning: heartbeat failed: ${e.details || e.message}; retrying`);
        this.call = undefined;
        await this.sleep(intervalMs);
        continue;
      }
      if (this.stopped) return;
      if (reply) {
        rejections = 0;
        await this.sleep(intervalMs);
        continue;
      }
      rejections++;
      this.opts.say(`warning: the build manager rejected a heartbeat (${rejections}/${maxRejections})`);
      if (rejections >= maxRejections) {
        this.stopped = true;
        this.opts.onRejected(`the build manager rejected ${maxRejections} heartbeats in a row`);
        return;
      }
    }
  }

  /** One send/receive pair on the (re)opened stream. */
  private beat(): Promise<boolean> {
    if (!this.call) {
      const fresh = this.client.heartbeat();
      // Between beats nobody else listens: a stream that dies then is simply replaced on the next beat.
      const forget = () => {
        if (this.call === fresh) this.call = undefined;
      };
      fresh.on('error', forget);
      fresh.on('end', forget);
      this.call = fresh;
    }
    const call = this.call;
    return new Promise<boolean>((resolve, reject) => {
      const cleanup = () => {
        call.off('data', onData);
        call.off('error', onError);
        call.off('end', onEnd);
      };
      const onData = (res: HeartbeatResponse) => {
        cleanup();
        resolve(res.reply);
      };
      const onError = (err: Error) => {
        cleanup();
        reject(err);
      };
      const onEnd = () => {
        cleanup();
        reject(new Error('the heartbeat stream was closed by the manager'));
      };
      call.on('data', onData);
      call.on('error', onError);
      call.on('end', onEnd);
      call.write({ jobJwt: this.jobToken });
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, ms);
      const self = this;
      function finish() {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = finish;
    });
  }
}
