import { badRequest } from './kube-status.js';

/** One requirement of a label selector, as the API server parses `labelSelector`. */
type Requirement =
  | { op: 'eq' | 'ne'; key: string; value: string }
  | { op: 'exists' | 'absent'; key: string }
  | { op: 'in' | 'notin'; key: string; values: string[] };

export type LabelSelector = Requirement[];

/**
 * Parses `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, comma-joined; an empty
 * string selects everything. Anything else is a 400, as from the real server.
 */
export function parseLabelSelector(text: string | null | undefined): LabelSelector {
  if (!text || !text.trim()) return [];
  return splitTopLevel(text).map((part) => parseRequirement(part.trim(), text));
}

export function matchesSelector(labels: Record<string, string> | undefined, selector: LabelSelector): boolean {
  const l = labels ?? {};
  return selector.every((r) => {
    const has = Object.prototype.hasOwnProperty.call(l, r.key);
    switch (r.op) {
      case 'eq':
        return has && l[r.key] === r.value;
      case 'ne':
        return !has || l[r.key] !== r.value;
      case 'exists':
        return has;
      case 'absent':
        return !has;
      case 'in':
        return has && r.values.includes(l[r.key]);
      case 'notin':
        return !has || !r.values.includes(l[r.key]);
    }
  });
}

/** Commas separate requirements, except inside `( … )` of a set requirement. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '(') depth++;
    else if (text[i] === ')') depth--;
    else if (text[i] === ',' && depth === 0) {
      parts.push(text.slice(start, i));
      start = i + 1;
    }
  }
  parts.push(text.slice(start));
  return parts;
}

const KEY = String.raw`[A-Za-z0-9./_-]+`;

function parseRequirement(part: string, whole: string): Requirement {
  let m: RegExpMatchArray | null;
  if ((m = part.match(new RegExp(`^(${KEY})\\s*(==|=|!=)\\s*([A-Za-z0-9._-]*)$`))))
    return { op: m[2] === '!=' ? 'ne' : 'eq', key: m[1], value: m[3] };
  if ((m = part.match(new RegExp(`^(${KEY})\\s+(in|notin)\\s*\\(([^)]*)\\)$`))))
    return { op: m[2] as 'in' | 'notin', key: m[1], values: m[3].split(',').map((v) => v.trim()) };
  if ((m = part.match(new RegExp(`^!\\s*(${KEY})$`)))) return { op: 'absent', key: m[1] };
  if ((m = part.match(new RegExp(`^(${KEY})$`)))) return { op: 'exists', key: m[1] };
  throw badRequest(`unable to parse requirement: found '${part}', expected: in, notin, =, ==, !=, gt, lt (in selector "${whole}")`);
}
