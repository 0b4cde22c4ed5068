import type { HistoryEntry } from '../persistence/actor-store.js';

/** A history event in one line: known internal events in words, the rest as type and payload (`at` left out). */
export function describeEvent(event: HistoryEntry['event']): string {
  const { type, ...rest } = event;
  if (type === 'xstate.init') return 'created';
  if (type.startsWith('xstate.done.actor.')) return `${type.slice('xstate.done.actor.'.length)} finished`;
  const details = Object.entries(rest)
    .filter(([k]) => k !== 'at')
    .map(([k, v]) => `${k}=${typeof v === 'object' ? JSON.stringify(v) : String(v)}`)
    .join(' ');
  return details ? `${type} ${details}` : type;
}
