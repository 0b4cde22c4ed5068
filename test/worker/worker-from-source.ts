import { join } from 'node:path';

/** A launcher that runs the worker's TypeScript source as a process (no `npm run build` needed). */
export const WORKER_FROM_SOURCE = join(import.meta.dirname, 'fixtures', 'worker-from-source.js');
