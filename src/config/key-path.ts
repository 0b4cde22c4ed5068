/** A position in the config file: keys and list indexes, as zod reports them. */
export type KeyPath = readonly PropertyKey[];

/**
 * Writes a path the way an operator reads their YAML: `BUILD_MANAGER[1].EXECUTORS[0].EC2_REGION`.
 * Indexes count from 0, so `BUILD_MANAGER[1]` is the manager mapping after the `ephemeral` kind.
 */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(top level)';
}
