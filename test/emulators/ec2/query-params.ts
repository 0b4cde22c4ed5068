/**
 * EC2 Query API parameters as they arrive on the wire: a flat form (`Filter.1.Value.2=x`). EC2 lists
 * are 1-based, dotted, and may not skip an index; these helpers read them back into arrays.
 */
export type QueryParams = ReadonlyMap<string, string>;

export function parseForm(body: string): Map<string, string> {
  return new Map(new URLSearchParams(body));
}

/** The members of list `prefix` (`InstanceId` → InstanceId.1, InstanceId.2, … until a gap). */
export function listOf(params: QueryParams, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; params.has(`${prefix}.${i}`); i++) out.push(params.get(`${prefix}.${i}`)!);
  return out;
}

/** The prefixes of a list of structures (`Filter` → [`Filter.1`, `Filter.2`]), up to the first gap. */
export function structsOf(params: QueryParams, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 1; hasPrefix(params, `${prefix}.${i}.`); i++) out.push(`${prefix}.${i}`);
  return out;
}

function hasPrefix(params: QueryParams, prefix: string): boolean {
  for (const key of params.keys()) if (key.startsWith(prefix)) return true;
  return false;
}

/** Every parameter, sorted: a repeated ClientToken must come with exactly the same request. */
export function fingerprint(params: QueryParams): string {
  return JSON.stringify([...params.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}
