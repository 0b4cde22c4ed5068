import { pino, type Logger } from 'pino';
import { REDACTED, secretScrubber } from './redact.js';

export type { Logger };

/** Field names whose values are secrets wherever they appear in a log object. */
const REDACT_PATHS = [
  'token',
  '*.token',
  'jobJwt',
  '*.jobJwt',
  'registerJwt',
  'password',
  '*.password',
  'pullCredentials',
  '*.pullCredentials',
  'env.TOKEN',
  'authorization',
  '*.authorization',
];

/**
 * The process logger. Secrets are removed twice: by field name (above) and by value (every secret
 * string found in the config, replaced wherever it appears in a message).
 */
export function createLogger(opts: { level?: string; secrets?: readonly string[]; destination?: NodeJS.WritableStream } = {}): Logger {
  const secrets = opts.secrets ?? [];
  const scrub = secretScrubber(secrets);
  return pino(
    {
      level: opts.level ?? process.env.BUILDMAN_LOG_LEVEL ?? 'info',
      base: { service: 'buildman' },
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      ...(secrets.length
        ? {
            hooks: {
              logMethod(args, method) {
                method.apply(this, args.map((a) => (typeof a === 'string' ? scrub(a) : a)) as Parameters<typeof method>);
              },
            },
          }
        : {}),
    },
    (opts.destination as pino.DestinationStream | undefined) ?? pino.destination({ dest: 2, sync: false }),
  );
}

/** A logger that drops everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
