import type { ClientDuplexStream, ServiceError } from '@grpc/grpc-js';
import type { BuildManagerClient, LogMessageRequest, LogMessageResponse } from '../../proto/gen/buildman.js';
import type { JsonMessage } from './json-message.js';

/** How often a broken log stream is reopened before build logs are only kept locally. */
const MAX_REOPENS = 3;

/**
 * The `LogMessage` bidi stream. Lines are sent as they come (not one round trip each, unlike
 * quay-builder), numbered from 1; `flush()` waits for the manager's answers so that the final
 * SetPhase never overtakes the last log lines. A `success=false` answer is noted and ignored.
 */
export class LogStream {
  private call: ClientDuplexStream<LogMessageRequest, LogMessageResponse> | undefined;
  private sequence = 0;
  private unanswered = 0;
  private reopens = 0;
  private closed = false;
  private drained: Array<() => void> = [];
  jobToken = '';

  constructor(
    private readonly client: BuildManagerClient,
    private readonly say: (line: string) => void,
    private readonly scrub: (text: string) => string,
  ) {}

  /** Opens the stream; quay-builder does this right after Ping, before registering. */
  open(): void {
    const call = this.client.logMessage();
    this.call = call;
    call.on('data', (res: LogMessageResponse) => {
      if (!res.success) this.say(`warning: the build manager did not accept a log line (sequence ${res.sequenceNumber || '?'})`);
      this.answered(1);
    });
    const ended = (err?: ServiceError) => {
      if (this.call !== call) return;
      this.call = undefined;
      if (err && !this.closed) this.say(`warning: the log stream ended: ${err.details || err.message}`);
      this.answered(this.unanswered); // nothing more will be answered on this stream
    };
    call.on('error', (err: ServiceError) => ended(err));
    call.on('end', () => ended());
  }

  /** Sends one jsonmessage line. Never throws: a lost log line must not fail the build. */
  send(message: JsonMessage): void {
    if (this.closed) return;
    if (!this.call) {
      if (this.reopens >= MAX_REOPENS) return;
      this.reopens++;
      this.open();
    }
    this.sequence++;
    this.unanswered++;
    const text = this.scrub(JSON.stringify(message));
    this.call!.write({ jobJwt: this.jobToken, sequenceNumber: this.sequence, logMessage: text, phase: '' });
  }

  /** Resolves once every sent line is answered, the stream broke, or `timeoutMs` passed. */
  flush(timeoutMs = 5000): Promise<void> {
    if (this.unanswered === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(done, timeoutMs);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.drained = self.drained.filter((fn) => fn !== done);
        resolve();
      }
      this.drained.push(done);
    });
  }

  close(): void {
    this.closed = true;
    const call = this.call;
    this.call = undefined;
    if (call) {
      call.end();
      // The server may keep its side open; don't let that hold the process.
      setTimeout(() => call.cancel(), 1000).unref();
    }
  }

  private answered(n: number): void {
    this.unanswered = Math.max(0, this.unanswered - n);
    if (this.unanswered === 0) for (const fn of [...this.drained]) fn();
  }
}
