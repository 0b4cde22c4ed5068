import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { BUILD_ID_PATTERN } from '../api/api-schemas.js';
import { PermanentError } from '../errors/buildman-error.js';
import type { Logger } from '../util/logger.js';
import { InspectionFeed } from './inspection-feed.js';
import { inspectorBridgePage } from './inspector-bridge-page.js';

/** `buildman serve --inspect` without a port. */
export const DEFAULT_INSPECT_PORT = 4242;
const BUILD_ID = new RegExp(BUILD_ID_PATTERN);
/** A client this far behind is dropped rather than buffered without end. */
const MAX_CLIENT_BACKLOG_BYTES = 16 * 1024 * 1024;

export interface InspectServerHandle {
  /** The port listened on (the real one when 0 was asked). */
  port: number;
  /** `ws://127.0.0.1:<port>`; add `?build=<id>` for one build. */
  url: string;
  /** What the actor host sends its inspection events to. */
  feed: InspectionFeed;
  close(): Promise<void>;
}

/**
 * Live inspection: every build actor's events, in the Stately inspector protocol (one JSON
 * inspection event per WebSocket message), to any client on loopback. A client connecting with
 * `?build=<id>` gets only that build's events. Each new client first receives the recent events
 * (see InspectionBuffer). Messages from clients are ignored. Plain HTTP on the same port serves a
 * bridge page that shows the stream in Stately's hosted inspector.
 */
export async function startInspectServer(opts: { port: number; logger: Logger; secrets?: readonly string[] }): Promise<InspectServerHandle> {
  // Loopback only: the stream shows every build's context to whoever connects.
  const host = '127.0.0.1';
  const log = opts.logger.child({ component: 'inspect' });
  const feed = new InspectionFeed({ secrets: opts.secrets });
  const http = createServer((req, res) => {
    if (req.method === 'GET' && (req.url ?? '/').split('?')[0] === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(inspectorBridgePage());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('buildman inspector: connect a WebSocket to / (optionally /?build=<id>)\n');
    }
  });
  const wss = new WebSocketServer({ server: http });
  wss.on('connection', (ws: WebSocket, req: IncomingMessage) => {
    const build = new URL(req.url ?? '/', 'http://inspect').searchParams.get('build') ?? undefined;
    if (build !== undefined && !BUILD_ID.test(build)) {
      ws.close(1008, 'build must be a build id');
      return;
    }
    log.debug({ build }, 'inspector client connected');
    const unsubscribe = feed.subscribe((json) => {
      if (ws.readyState !== WebSocket.OPEN) return;
      if (ws.bufferedAmount > MAX_CLIENT_BACKLOG_BYTES) {
        log.warn({ build }, 'inspector client too slow; dropping it');
        ws.terminate();
        return;
      }
      ws.send(json);
    }, build);
    ws.on('close', unsubscribe);
    ws.on('error', () => ws.terminate());
  });

  await new Promise<void>((resolve, reject) => {
    http.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new PermanentError(`cannot serve inspection on ${host}:${opts.port}: the address is in use; pick another port with --inspect PORT`, 'INSPECT_BIND')
          : err,
      ),
    );
    http.listen(opts.port, host, resolve);
  });
  const { port } = http.address() as AddressInfo;
  log.info({ url: `ws://${host}:${port}` }, 'live inspection on');
  return {
    port,
    url: `ws://${host}:${port}`,
    feed,
    async close() {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}
