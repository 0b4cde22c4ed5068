import { Ec2ApiError } from './ec2-api-error.js';
import { STATE_CODES, type EmulatedInstance } from './emulated-instance.js';
import { listOf, structsOf, type QueryParams } from './query-params.js';

/** One DescribeInstances filter: the instance matches when any value matches (filters are ANDed). */
export interface InstanceFilter {
  name: string;
  values: string[];
}

export function parseFilters(p: QueryParams): InstanceFilter[] {
  return structsOf(p, 'Filter').map((f) => {
    const name = p.get(`${f}.Name`);
    if (!name) throw new Ec2ApiError('MissingParameter', `The request must contain the parameter ${f}.Name`);
    const values = listOf(p, `${f}.Value`);
    if (!name.startsWith('tag:') && !FIELDS[name]) throw new Ec2ApiError('InvalidParameterValue', `The filter '${name}' is invalid`);
    return { name, values };
  });
}

/** The instance fields each supported filter name reads. */
const FIELDS: Record<string, (i: EmulatedInstance) => Array<string | undefined>> = {
  'instance-id': (i) => [i.instanceId],
  'instance-state-name': (i) => [i.state],
  'instance-state-code': (i) => [String(STATE_CODES[i.state])],
  'instance-type': (i) => [i.instanceType],
  'image-id': (i) => [i.imageId],
  'key-name': (i) => [i.keyName],
  'subnet-id': (i) => [i.subnetId],
  'reservation-id': (i) => [i.reservationId],
  'client-token': (i) => [i.clientToken],
  'tag-key': (i) => [...i.tags.keys()],
  'tag-value': (i) => [...i.tags.values()],
};

export function matchesFilters(i: EmulatedInstance, filters: readonly InstanceFilter[]): boolean {
  return filters.every((f) => {
    const fields = f.name.startsWith('tag:') ? [i.tags.get(f.name.slice(4))] : FIELDS[f.name](i);
    return f.values.some((pattern) => {
      const re = wildcard(pattern);
      return fields.some((v) => v !== undefined && re.test(v));
    });
  });
}

/** EC2 filter values allow `*` (any run) and `?` (one character); a backslash escapes them. */
function wildcard(pattern: string): RegExp {
  let re = '';
  for (let k = 0; k < pattern.length; k++) {
    const c = pattern[k];
    if (c === '\\' && k + 1 < pattern.length) re += escapeRe(pattern[++k]);
    else if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`, 's');
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
