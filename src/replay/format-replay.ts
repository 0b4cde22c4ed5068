import { describeEvent } from './describe-event.js';
import type { ReplayReport } from './replay-history.js';
import { describeEffect } from './would-do.js';

/**
 * The replay as a timeline: step, time since the first entry, event, state before → after, and
 * what the actor would have done; then one line saying whether it matched the recorded states.
 */
export function formatReplay(report: ReplayReport, totalEntries: number): string {
  const lines = [`${'step'.padStart(4)}  ${'time'.padStart(9)}  ${'event'.padEnd(46)} ${'before → after'.padEnd(44)} would do`];
  for (const s of report.steps) {
    const offset = `+${(s.offsetMs / 1000).toFixed(3)}s`.padStart(9);
    let move = `${s.before ?? '∅'} → ${s.after}`;
    if (s.after !== s.recorded) move += ` (recorded ${s.recorded})`;
    const effects = s.effects.map(describeEffect).join('; ');
    lines.push(`${String(s.step).padStart(4)}  ${offset}  ${clip(describeEvent(s.event), 46).padEnd(46)} ${move.padEnd(44)} ${effects}`.trimEnd());
  }
  if (report.versionMismatch) {
    lines.push(
      `note: recorded by machine version ${report.recordedVersions.join(', ')}; this machine is version ${report.machineVersion}`,
    );
  }
  if (report.diverged) {
    lines.push(`DIVERGED at step ${report.diverged.step}: ${report.diverged.message}`);
  } else if (report.steps.length < totalEntries) {
    lines.push(`replay matches the recorded state ${report.recordedFinalState} at step ${report.steps.length} of ${totalEntries}`);
  } else {
    lines.push(`replay matches the recorded final state ${report.recordedFinalState}`);
  }
  return lines.join('\n') + '\n';
}

function clip(text: string, width: number): string {
  return text.length <= width ? text : text.slice(0, width - 1) + '…';
}
