import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { RequestError } from '../errors/buildman-error.js';
import {
  buildIdParams,
  contextQuery,
  listQuery,
  logsQuery,
  submitJsonBody,
  submitUploadQuery,
  type SubmitJsonBody,
  type SubmitUploadQuery,
} from './api-schemas.js';
import type { BuildService } from './build-service.js';
import { openLogFollowStream } from './log-follow-stream.js';
import { requestFromJson, requestFromUpload } from './submit-request.js';

/** Media types taken as a tar(.gz) build context; their bodies reach the service as a stream. */
const UPLOAD_MEDIA_TYPES = ['application/x-tar', 'application/gzip', 'application/x-gzip', 'application/octet-stream'];

interface IdParams {
  id: string;
}

/** The `/api/v1/builds` routes. Live log followers are ended when the server closes. */
export function registerBuildRoutes(app: FastifyInstance, service: BuildService): void {
  // Hand the raw request stream to the handler: the service streams it to storage and enforces
  // the size cap itself, so Fastify's bodyLimit (which only buffered parsers apply) stays out of it.
  app.addContentTypeParser(UPLOAD_MEDIA_TYPES, (_request, payload, done) => done(null, payload));

  const followers = new Set<() => void>();
  app.addHook('preClose', (done) => {
    for (const stop of followers) stop();
    done();
  });

  app.post<{ Body: SubmitJsonBody | Readable | undefined; Querystring: SubmitUploadQuery }>(
    '/api/v1/builds',
    {
      schema: {
        body: { content: { 'application/json': { schema: submitJsonBody } } },
        querystring: submitUploadQuery,
      },
    },
    async (request, reply) => {
      const body = request.body;
      if (isStream(body)) {
        const declared = Number(request.headers['content-length'] ?? 0);
        try {
          const view = await service.submit(requestFromUpload(request.query, Number.isFinite(declared) ? declared : 0), body);
          return reply.code(201).send(view);
        } catch (err) {
          // The rest of an unread upload is not worth receiving: close instead of draining it.
          if (!body.readableEnded) reply.header('connection', 'close');
          throw err;
        }
      }
      if (body === undefined || body === null || typeof body !== 'object') {
        throw new RequestError(
          'the request has no body: send a JSON build request (Content-Type: application/json) or a tar/tar.gz context (Content-Type: application/gzip)',
          400,
        );
      }
      return reply.code(201).send(await service.submit(requestFromJson(body)));
    },
  );

  app.get<{ Querystring: { limit: number } }>('/api/v1/builds', { schema: { querystring: listQuery } }, async (request) => ({
    builds: await service.list({ limit: request.query.limit }),
  }));

  app.get<{ Params: IdParams }>('/api/v1/builds/:id', { schema: { params: buildIdParams } }, async (request) =>
    service.get(request.params.id),
  );

  app.get<{ Params: IdParams }>('/api/v1/builds/:id/history', { schema: { params: buildIdParams } }, async (request) => ({
    history: await service.history(request.params.id),
  }));

  app.get<{ Params: IdParams; Querystring: { start: number; follow: boolean } }>(
    '/api/v1/builds/:id/logs',
    { schema: { params: buildIdParams, querystring: logsQuery } },
    async (request, reply) => {
      const { id } = request.params;
      const { start, follow } = request.query;
      if (!follow) return service.logs(id, start);

      const { stream, stop } = await openLogFollowStream(service, id, start);
      followers.add(stop);
      // Fires on a normal finish and when the client goes away; either way, stop following.
      reply.raw.on('close', () => {
        followers.delete(stop);
        stop();
      });
      return reply.type('application/x-ndjson').header('cache-control', 'no-store').send(stream);
    },
  );

  app.post<{ Params: IdParams }>('/api/v1/builds/:id/cancel', { schema: { params: buildIdParams } }, async (request) =>
    service.cancel(request.params.id),
  );

  app.get<{ Params: IdParams; Querystring: { token?: string } }>(
    '/api/v1/builds/:id/context',
    { schema: { params: buildIdParams, querystring: contextQuery } },
    async (request, reply) => {
      const token = request.query.token ?? bearerToken(request.headers.authorization);
      if (!token) {
        throw new RequestError('a job token is required: pass ?token=<JWT> or Authorization: Bearer <JWT>', 401, 'token');
      }
      const archive = await service.openContext(request.params.id, token);
      return reply.type('application/octet-stream').send(archive);
    },
  );
}

function isStream(body: unknown): body is Readable {
  return typeof (body as Readable | undefined)?.pipe === 'function';
}

function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}
