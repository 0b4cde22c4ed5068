import { Ajv, type ErrorObject } from 'ajv';
import type { FastifySchemaCompiler, FastifySchemaValidationError } from 'fastify';
import { RequestError } from '../errors/buildman-error.js';

/**
 * One Ajv per kind of input, as Fastify's validation guide suggests: query strings and path params
 * arrive as text and need coercion (`?start=5`, a single `?tag=x` as an array), while a JSON body
 * must be taken as sent, so `"tags": [1]` is refused rather than quietly turned into `["1"]`.
 * Unknown fields are refused, not dropped, so a typo (`tag` for `tags`) is reported.
 * `verbose` keeps each failing schema on its error, so its `description` can word the message.
 * The body collects all errors (it is small: the JSON parser caps it at 1 MiB) because Ajv checks
 * `oneOf` before `required`, and "repository is required" is the better thing to say first.
 */
const bodyAjv = new Ajv({ coerceTypes: false, useDefaults: true, removeAdditional: false, allErrors: true, verbose: true });
const textAjv = new Ajv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false, allErrors: false, verbose: true });

export const validatorCompiler: FastifySchemaCompiler<unknown> = ({ schema, httpPart }) =>
  (httpPart === 'body' ? bodyAjv : textAjv).compile(schema as object);

type SchemaErrorDataVar = 'body' | 'headers' | 'params' | 'querystring';

const PART_NAMES: Record<SchemaErrorDataVar, string> = {
  body: 'body',
  querystring: 'query',
  params: 'path',
  headers: 'header',
};

/**
 * Turns Ajv's errors into one `RequestError` naming the field, e.g.
 * `body.repository must be namespace/name …` or `query.start must be >= 0`. A plain field error
 * is reported before a `oneOf`/`anyOf` summary, and a summary before its branches' complaints.
 */
export function schemaErrorFormatter(errors: FastifySchemaValidationError[], dataVar: SchemaErrorDataVar): Error {
  const error = [...(errors as ErrorObject[])].sort((a, b) => rank(a) - rank(b))[0];
  const part = PART_NAMES[dataVar] ?? dataVar;
  if (!error) return new RequestError(`${part} is invalid`, 400);

  const base = fieldPath(error.instancePath);
  const join = (name: string) => (base ? `${base}.${name}` : name);
  const describe = (fallback: string | undefined) => (error.parentSchema?.description as string | undefined) ?? fallback ?? 'is invalid';
  const noun = dataVar === 'body' ? 'field' : 'parameter';

  let field = base;
  let text: string;
  switch (error.keyword) {
    case 'required':
      field = join(String(error.params.missingProperty));
      text = `is required`;
      break;
    case 'additionalProperties':
      field = join(String(error.params.additionalProperty));
      text = `is not a known ${noun}`;
      break;
    case 'pattern':
    case 'format':
    case 'oneOf':
    case 'anyOf':
      text = describe(error.message);
      break;
    default:
      text = error.message ?? 'is invalid';
  }
  return new RequestError(field ? `${part}.${field} ${text}` : `${part} ${text}`, 400, field || undefined);
}

const COMBINATORS = new Set(['oneOf', 'anyOf', 'allOf', 'not', 'if']);

function rank(error: ErrorObject): number {
  if (/\/(oneOf|anyOf)\//.test(error.schemaPath)) return 2;
  return COMBINATORS.has(error.keyword) ? 1 : 0;
}

/** `/tags/0` → `tags[0]`; `/git/url` → `git.url`. */
function fieldPath(instancePath: string): string {
  return instancePath
    .split('/')
    .slice(1)
    .map((seg) => seg.replace(/~1/g, '/').replace(/~0/g, '~'))
    .reduce((acc, seg) => (/^\d+$/.test(seg) ? `${acc}[${seg}]` : acc ? `${acc}.${seg}` : seg), '');
}
