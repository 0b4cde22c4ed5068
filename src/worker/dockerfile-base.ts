/**
 * Reads the base image of a Dockerfile's first stage, for SetPhase PULLING's `pull_metadata`.
 * The rules follow quay-builder: the first instruction must be FROM or ARG, leading ARG defaults
 * are substituted into the FROM, and a missing tag means `latest` (also for `scratch`).
 */

export interface BaseImageRef {
  /** The image name without tag or digest, e.g. `quay.io/org/app` or `scratch`. */
  image: string;
  tag: string;
}

export class DockerfileError extends Error {
  override readonly name = 'DockerfileError';
}

interface Instruction {
  keyword: string;
  args: string;
}

/** Splits a Dockerfile into instructions: comments dropped, backslash continuations joined. */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (pending === '' && (line === '' || line.startsWith('#'))) continue;
    if (pending !== '' && line.startsWith('#')) continue; // comments inside a continuation are skipped too
    if (line.endsWith('\\')) {
      pending += line.slice(0, -1) + ' ';
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    if (full === '') continue;
    const m = /^(\S+)\s*(.*)$/.exec(full);
    if (m) out.push({ keyword: m[1].toUpperCase(), args: m[2] });
  }
  if (pending.trim() !== '') {
    const m = /^(\S+)\s*(.*)$/.exec(pending.trim());
    if (m) out.push({ keyword: m[1].toUpperCase(), args: m[2] });
  }
  return out;
}

function substitute(word: string, args: Map<string, string>): string {
  return word.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (_m, braced, fallback, bare) => {
    const name = (braced ?? bare) as string;
    const value = args.get(name);
    return value !== undefined && value !== '' ? value : ((fallback as string | undefined) ?? '');
  });
}

/** Splits `host:port/ns/name:tag@digest` into name and tag (quay-builder ignores digests for the tag). */
export function splitImageReference(ref: string): BaseImageRef {
  let name = ref;
  const at = name.indexOf('@');
  if (at >= 0) name = name.slice(0, at);
  let tag = '';
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  if (name === '' || /\s/.test(name)) throw new DockerfileError('FROM line specifies an invalid base image');
  return { image: name, tag: tag === '' ? 'latest' : tag };
}

export function parseBaseImage(dockerfileText: string): BaseImageRef {
  const list = instructions(dockerfileText);
  if (list.length === 0) throw new DockerfileError('Empty Dockerfile');
  if (list[0].keyword !== 'FROM' && list[0].keyword !== 'ARG') {
    throw new DockerfileError("First line in Dockerfile isn't FROM or ARG");
  }
  const args = new Map<string, string>();
  for (const ins of list) {
    if (ins.keyword === 'ARG') {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(.*))?$/.exec(ins.args.trim());
      if (m) args.set(m[1], (m[2] ?? '').replace(/^"(.*)"$/, '$1'));
      continue;
    }
    if (ins.keyword !== 'FROM') throw new DockerfileError("First line in Dockerfile isn't FROM or ARG");
    const words = ins.args.split(/\s+/).filter((w) => w !== '' && !w.startsWith('--'));
    if (words.length === 0) throw new DockerfileError('FROM line specifies an invalid base image');
    return splitImageReference(substitute(words[0], args));
  }
  throw new DockerfileError("First line in Dockerfile isn't FROM or ARG");
}
