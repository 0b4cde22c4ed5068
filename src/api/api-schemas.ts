/**
 * JSON schemas for the HTTP API's bodies, params and query strings. A `description` on a schema is
 * the wording a client sees when a value fails it (see request-validation.ts), so it is phrased as
 * what the value must be.
 */

/** `namespace/name`, as Quay spells repositories; each part is a Docker path component (no separator at either end or twice). */
export const REPOSITORY_PATTERN = '^[a-z0-9]+(?:[._-][a-z0-9]+)*/[a-z0-9]+(?:[._-][a-z0-9]+)*$';
/** A build id, as the API's `:id` parameter and the inspector's `?build=` accept it. */
export const BUILD_ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$';
/** Docker's tag grammar. */
export const TAG_PATTERN = '^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$';

const repository = {
  type: 'string',
  pattern: REPOSITORY_PATTERN,
  description: 'must be namespace/name in lowercase letters, digits, ".", "_" or "-" (e.g. "acme/web")',
} as const;

const tag = {
  type: 'string',
  pattern: TAG_PATTERN,
  description: 'must be a Docker tag: letters, digits, "_", "." or "-", at most 128 characters, not starting with "." or "-"',
} as const;

const relativePath = { type: 'string', minLength: 1, maxLength: 1024 } as const;

export const buildIdParams = {
  type: 'object',
  required: ['id'],
  properties: {
    id: { type: 'string', pattern: BUILD_ID_PATTERN, description: 'must be a build id' },
  },
} as const;

/** The JSON form of `POST /api/v1/builds`: a source the worker fetches itself. */
export const submitJsonBody = {
  type: 'object',
  additionalProperties: false,
  required: ['repository'],
  properties: {
    repository,
    tags: { type: 'array', minItems: 1, maxItems: 100, items: tag },
    dockerfile_path: relativePath,
    context: relativePath,
    archive_url: {
      type: 'string',
      pattern: '^(https?|file)://.+',
      maxLength: 4096,
      description: 'must be an http://, https:// or file:// URL',
    },
    git: {
      type: 'object',
      additionalProperties: false,
      required: ['url', 'sha'],
      properties: {
        url: { type: 'string', minLength: 1, maxLength: 4096 },
        sha: { type: 'string', minLength: 1, maxLength: 256 },
      },
    },
    pull_credentials: {
      type: 'object',
      additionalProperties: false,
      required: ['username', 'password'],
      properties: {
        username: { type: 'string', minLength: 1 },
        password: { type: 'string', minLength: 1 },
        registry: { type: 'string', minLength: 1 },
      },
    },
  },
  // Wrapped in allOf so the oneOf failure carries its own description.
  allOf: [
    {
      description: 'must have exactly one of archive_url or git (or upload a tar body instead of JSON)',
      oneOf: [{ required: ['archive_url'] }, { required: ['git'] }],
    },
  ],
} as const;

/** The upload form of `POST /api/v1/builds`: the body is the tar(.gz) context; the rest is in the query. */
export const submitUploadQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    repository,
    tag: { type: 'array', minItems: 1, maxItems: 100, items: tag },
    dockerfile_path: relativePath,
    context: relativePath,
  },
} as const;

export const listQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    limit: { type: 'integer', minimum: 1, maximum: 1000, default: 50 },
  },
} as const;

export const logsQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    start: { type: 'integer', minimum: 0, default: 0 },
    follow: { type: 'boolean', default: false },
  },
} as const;

export const contextQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    token: { type: 'string', minLength: 1 },
  },
} as const;

/** The body types the schemas above admit, as handlers see them. */
export interface SubmitJsonBody {
  repository: string;
  tags?: string[];
  dockerfile_path?: string;
  context?: string;
  archive_url?: string;
  git?: { url: string; sha: string };
  pull_credentials?: { username: string; password: string; registry?: string };
}

export interface SubmitUploadQuery {
  repository?: string;
  tag?: string[];
  dockerfile_path?: string;
  context?: string;
}
