import { z } from 'zod';

/**
 * Building blocks for the config schemas. Each one carries its own wording, so every zod issue
 * already reads `expected <what>, got <value>` (or `required: …` when the key is absent) and the
 * loader only has to put the key path in front.
 */

/** How a value read from the file appears in a message: strings quoted, collections by kind. */
export function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return `the date ${value.toISOString().slice(0, 10)}`;
  if (Array.isArray(value)) return value.length === 1 ? 'a list of 1 item' : `a list of ${value.length} items`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

/** The part of a zod issue our messages use. */
type IssueInput = { readonly input?: unknown };

/** A zod error function: `required: <missing>` when the key is absent, else `expected <what>, got <value>`. */
export function expected(what: string, missing = `required: ${what}`): (issue: IssueInput) => string {
  return (issue) => (issue.input === undefined ? missing : `expected ${what}, got ${show(issue.input)}`);
}

/**
 * Like `expected`, for text fields. YAML reads `3.10`, `yes` or `2024-01-01` as a number, a boolean
 * or a date, so say how to keep the value as written.
 */
function expectedText(what: string, missing?: string): (issue: IssueInput) => string {
  const base = expected(what, missing);
  return (issue) => {
    const v = issue.input;
    const read = typeof v === 'number' ? 'a number' : typeof v === 'boolean' ? 'true/false' : v instanceof Date ? 'a date' : undefined;
    return read ? `${base(issue)} (YAML read it as ${read}; put the value in quotes)` : base(issue);
  };
}

/** Text. `nonEmpty` rejects `""`; `missing` is the message when the key is required and absent. */
export function text(what = 'a string', opts: { nonEmpty?: boolean; missing?: string } = {}) {
  const error = expectedText(what, opts.missing);
  const schema = z.string({ error });
  return opts.nonEmpty ? schema.min(1, { error }) : schema;
}

/** A whole number in [min, max]; the message states the range. */
export function wholeNumber(min: number, max?: number, unit = '') {
  const range = max === undefined ? `≥ ${min}` : `from ${min} to ${max}`;
  const error = expected(`a whole number${unit ? ' of ' + unit : ''} ${range}`);
  const schema = z.number({ error }).int({ error }).min(min, { error });
  return max === undefined ? schema : schema.max(max, { error });
}

/** A number (fractions allowed) ≥ min. */
export function decimal(min: number, unit = '') {
  const error = expected(`a number${unit ? ' of ' + unit : ''} ≥ ${min}`);
  return z.number({ error }).min(min, { error });
}

/** A fraction 0..1 (STAGED_ROLLOUT). */
export function fraction() {
  const error = expected('a fraction from 0 to 1 (e.g. 0.25 for a quarter of namespaces)');
  return z.number({ error }).min(0, { error }).max(1, { error });
}

/** A TCP port; 0 asks the OS for a free one (tests). */
export function port() {
  return wholeNumber(0, 65535);
}

/**
 * A whole number that may also be written as digits in quotes. Only for keys Quay passes on as text
 * without doing arithmetic (a Redis port or db number, a value written into a template), so a Quay
 * config that quotes them keeps working.
 */
export function wholeNumberOrDigits(min: number, max?: number, unit = '') {
  return z.preprocess((v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v), wholeNumber(min, max, unit));
}

/** `true`/`false` (also `True`, `yes`, `on`, … as YAML 1.1 reads them). */
export function flag() {
  return z.boolean({ error: expected('true or false') });
}

/** One of a fixed set of words. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T, missing?: string) {
  return z.enum(values, { error: expected(`one of ${values.join(', ')}`, missing) });
}

/** A list of strings. */
export function textList(what = 'a list of strings') {
  return z.array(text(`${what}: each item a string`), { error: expected(what) });
}

/** A YAML mapping with any keys (checked further by the section that owns it). */
export function mapping(what: string, missing?: string) {
  return z.record(z.string(), z.unknown(), { error: expected(what, missing) });
}

/** A host name with an optional `:port`, no scheme and no path (SERVER_HOSTNAME, BUILDMAN_HOSTNAME). */
export function hostAndPort(what = 'a host name with an optional :port, e.g. quay.example.com') {
  const error = expectedText(what);
  return z
    .string({ error })
    .min(1, { error })
    .refine((v) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(v) && !v.includes('/') && !/\s/.test(v), {
      error: (issue) => `${expected(what)(issue)}: leave out the scheme and any path (the scheme is PREFERRED_URL_SCHEME)`,
    });
}

/** An http(s) URL, kept without a trailing slash. */
export function httpUrl(what = 'an http:// or https:// URL') {
  const error = expectedText(what);
  return z
    .string({ error })
    .refine((v) => {
      try {
        return ['http:', 'https:'].includes(new URL(v).protocol);
      } catch {
        return false;
      }
    }, { error })
    .transform((v) => v.replace(/\/+$/, ''));
}
