import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

let cached: boolean | undefined;

/**
 * Whether real buildah builds can run here: buildah answers and we are root (chroot isolation
 * with a private store needs root; see reference/real-build.md).
 */
export function hasBuildah(): boolean {
  if (cached === undefined) {
    const r = spawnSync('buildah', ['--version'], { encoding: 'utf8' });
    cached = r.status === 0 && process.getuid?.() === 0;
  }
  return cached;
}

/** A statically linked busybox to copy into `FROM scratch` images (Debian's busybox-static). */
export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
