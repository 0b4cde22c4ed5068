import type { StateValue } from 'xstate';
import type { BuildPhase } from '../builds/build-record.js';

/** The Quay phase a person sees for an actor state. */
export function phaseOfState(value: StateValue): BuildPhase {
  if (typeof value === 'object') {
    const running = (value as Record<string, StateValue>).running;
    return typeof running === 'string' ? (running as BuildPhase) : 'waiting';
  }
  switch (value) {
    case 'queued':
    case 'scheduling':
    case 'retrying':
      return 'waiting';
    case 'waitingForRegistration':
      return 'build-scheduled';
    default:
      return value as BuildPhase;
  }
}

/** `running.building` style, for people and the status page. */
export function stateString(value: StateValue): string {
  if (typeof value === 'string') return value;
  return Object.entries(value)
    .map(([k, v]) => (v === undefined ? k : `${k}.${stateString(v as StateValue)}`))
    .join(',');
}

/** Quay's `str(datetime.now())` form: `YYYY-MM-DD HH:MM:SS.ffffff` in local time. */
export function quayDatetime(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}000`;
}

/** The Quay phase for a dotted state string (`running.building` → `building`). */
export function phaseOfStateString(state: string): BuildPhase {
  const [top, sub] = state.split('.');
  return phaseOfState(sub === undefined ? top : { [top]: sub });
}
