import type { BuildView } from '../api/build-service.js';
import type { LogEntry } from '../builds/build-record.js';

/** A log entry as a terminal line: phases stand out as `==> <phase>`, the rest is its text. */
export function formatLogEntry(entry: LogEntry): string {
  if (entry.type === 'phase') return `==> ${entry.message}`;
  return entry.message.replace(/\r?\n$/, '');
}

/** `42s`, `3m12s`, `2h05m`, `3d04h`: how long ago, to the two largest units. */
export function formatAge(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d${pad(Math.floor((s % 86400) / 3600))}h`;
}

/** The `status` view: one `label: value` line per field, labels aligned. */
export function formatBuildDetails(build: BuildView, now: number): string {
  const rows: [string, string][] = [
    ['id', build.id],
    ['repository', build.repository],
    ['tags', build.tags.join(', ')],
    ['source', describeSource(build)],
    ['phase', build.phase],
    ['state', build.state],
    ['attempt', String(build.attempt)],
    ['executor', build.executor ?? '-'],
    ['age', formatAge(now - build.createdAt)],
  ];
  if (build.reason) rows.push(['reason', build.reason]);
  const width = Math.max(...rows.map(([label]) => label.length)) + 1;
  return rows.map(([label, value]) => `${`${label}:`.padEnd(width)} ${value}`).join('\n') + '\n';
}

/** The `list` view: a table with a header row. */
export function formatBuildTable(builds: BuildView[], now: number): string {
  const rows = [
    ['ID', 'REPOSITORY', 'TAGS', 'PHASE', 'ATTEMPT', 'AGE'],
    ...builds.map((b) => [b.id, b.repository, b.tags.join(','), b.phase, String(b.attempt), formatAge(now - b.createdAt)]),
  ];
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((row) => row[col]!.length)));
  return rows.map((row) => row.map((cell, col) => cell.padEnd(widths[col]!)).join('  ').trimEnd()).join('\n') + '\n';
}

function describeSource(build: BuildView): string {
  const source = build.source;
  switch (source.kind) {
    case 'upload':
      return `uploaded context (${source.bytes} bytes)`;
    case 'url':
      return source.url;
    case 'git':
      return `${source.url} @ ${source.sha}`;
  }
}
