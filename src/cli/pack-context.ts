import { basename } from 'node:path';
import { create } from 'tar';

/** Never part of a build context: version-control metadata only adds bytes. */
const SKIPPED = new Set(['.git', '.hg', '.svn']);

/**
 * Packs a directory as a gzipped tar stream, paths relative to the directory (as `docker build`
 * sends them). `.dockerignore` is left to the builder, which applies it itself.
 */
export function packContext(dir: string): AsyncIterable<Uint8Array> {
  return create({ gzip: true, cwd: dir, portable: true, filter: (path) => !SKIPPED.has(basename(path)) }, ['.']);
}
