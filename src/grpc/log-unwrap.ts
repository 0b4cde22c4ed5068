import type { LogEntry } from '../builds/build-record.js';

const STEP = /^Step\s+\d+(\/\d+)?\s+:/;

/**
 * Turns one worker log line (a Docker jsonmessage) into a build log entry, as Quay does: the
 * first of `error`, `status`, `stream` is the text; `Step N/M :` lines are commands. Returns
 * undefined when the line is not JSON. Unlike Quay, `error` lines are typed `error`.
 */
export function unwrapLogMessage(line: string, datetime: string): LogEntry | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const msg = parsed as Record<string, unknown>;
  const key = (['error', 'status', 'stream'] as const).find((k) => k in msg);
  const text = key === undefined ? '' : String(msg[key]);
  const entry: LogEntry = { message: text, data: { datetime } };
  if (key === 'error') entry.type = 'error';
  else if (STEP.test(text)) entry.type = 'command';
  return entry;
}
