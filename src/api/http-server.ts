import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fastify, type FastifyBaseLogger } from 'fastify';
import type { Logger } from '../util/logger.js';
import { registerBuildRoutes } from './build-routes.js';
import type { BuildService } from './build-service.js';
import { toErrorReply } from './error-reply.js';
import { schemaErrorFormatter, validatorCompiler } from './request-validation.js';
import { registerStatusPage } from './status-page.js';

export interface HttpServerOptions {
  host: string;
  port: number;
  logger: Logger;
}

export interface HttpServerHandle {
  /** The port listened on (the real one when 0 was asked). */
  port: number;
  /** Base URL, e.g. `http://127.0.0.1:8686`. */
  url: string;
  /** Ends live log followers, then stops listening. */
  close(): Promise<void>;
}

/**
 * The HTTP API (builds, logs, cancel, uploaded contexts for workers, health) in front of a
 * `BuildService`. JSON in and out; every error is `{ error: { code, message, field? } }`.
 */
export async function startHttpServer(service: BuildService, opts: HttpServerOptions): Promise<HttpServerHandle> {
  const app = fastify({
    // Request lines are logged by path only: a worker's context URL carries its job token in `?token=`.
    loggerInstance: opts.logger.child(
      { component: 'http-api' },
      { serializers: { req: (req: IncomingMessage & { ip?: string }) => ({ method: req.method, path: pathOf(req.url), remoteAddress: req.ip }) } },
    ) as FastifyBaseLogger,
    schemaErrorFormatter,
    // A trailing slash is a common client slip, not a different resource.
    routerOptions: { ignoreTrailingSlash: true },
  });
  app.setValidatorCompiler(validatorCompiler);

  app.setErrorHandler((err, request, reply) => {
    const { status, body, internal } = toErrorReply(err);
    if (internal) request.log.error({ err }, 'request failed');
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: 'NOT_FOUND', message: `no route ${request.method} ${pathOf(request.url)}; the API is under /api/v1/builds` } }),
  );

  app.get('/health', async (_request, reply) => {
    try {
      const { ok, details } = await service.health();
      return reply.code(ok ? 200 : 503).send({ ...details, ok });
    } catch (err) {
      return reply.code(503).send({ ok: false, error: err instanceof Error ? err.message : String(err) });
    }
  });
  app.get('/metrics', async (_request, reply) => {
    const { contentType, body } = await service.metrics();
    return reply.header('content-type', contentType).send(body);
  });
  registerBuildRoutes(app, service);
  registerStatusPage(app);

  await app.listen({ host: opts.host, port: opts.port });
  const { port } = app.server.address() as AddressInfo;
  return {
    port,
    url: `http://${opts.host.includes(':') ? `[${opts.host}]` : opts.host}:${port}`,
    close: () => app.close(),
  };
}

/** The URL without its query string. */
function pathOf(url: string | undefined): string {
  return (url ?? '').split('?')[0] ?? '';
}
