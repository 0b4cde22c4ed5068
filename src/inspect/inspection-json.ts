import type { StatelyInspectionEvent } from '@statelyai/inspect';
import { REDACTED, secretScrubber } from '../util/redact.js';

/** Field names whose values never leave the process, wherever they sit in an event or snapshot. */
const SECRET_KEY = /token|jwt|password|secret|credential|private.?key|authorization/i;
/** A JWT (header.payload.signature, base64url): build tokens look like this. */
const JWT = /eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g;

/**
 * An inspection event as the JSON text clients receive. The machine's context and events carry no
 * secret by design; this is the second line of defence: secret-named fields, anything shaped like a
 * JWT and the config's own secret values are replaced by `[REDACTED]`. Errors become name + message.
 */
export function inspectionJson(event: StatelyInspectionEvent, secrets: readonly string[]): string {
  const scrub = secretScrubber(secrets);
  return JSON.stringify(event, (key, value: unknown) => {
    if (value instanceof Error) return { name: value.name, message: scrub(value.message.replace(JWT, REDACTED)) };
    if (key !== '' && SECRET_KEY.test(key) && value !== undefined && value !== null) return REDACTED;
    if (typeof value === 'string') return scrub(value.replace(JWT, REDACTED));
    return value;
  });
}
