import type { BuildRequest } from '../builds/build-record.js';
import { RequestError } from '../errors/buildman-error.js';
import type { SubmitJsonBody, SubmitUploadQuery } from './api-schemas.js';

const DEFAULT_TAGS = ['latest'];
const DEFAULT_DOCKERFILE = 'Dockerfile';
const DEFAULT_CONTEXT = '/';

/** A JSON submission (already schema-checked) as a `BuildRequest`: the worker fetches the source. */
export function requestFromJson(body: SubmitJsonBody): BuildRequest {
  const request: BuildRequest = {
    repository: body.repository,
    tags: body.tags ?? DEFAULT_TAGS,
    dockerfilePath: body.dockerfile_path ?? DEFAULT_DOCKERFILE,
    context: body.context ?? DEFAULT_CONTEXT,
    source: body.git ? { kind: 'git', url: body.git.url, sha: body.git.sha } : { kind: 'url', url: body.archive_url as string },
  };
  if (body.pull_credentials) request.pullCredentials = { ...body.pull_credentials };
  return request;
}

/**
 * An upload's query string as a `BuildRequest`. `bytes` is the declared length, if any; the
 * service counts the real size while it stores the stream.
 */
export function requestFromUpload(query: SubmitUploadQuery, bytes: number): BuildRequest {
  if (!query.repository) {
    throw new RequestError('query.repository is required with an uploaded context (e.g. ?repository=acme/web)', 400, 'repository');
  }
  return {
    repository: query.repository,
    tags: query.tag ?? DEFAULT_TAGS,
    dockerfilePath: query.dockerfile_path ?? DEFAULT_DOCKERFILE,
    context: query.context ?? DEFAULT_CONTEXT,
    source: { kind: 'upload', bytes },
  };
}
