import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Integration tests start real servers and worker processes; two cores, so keep files serial-ish.
    fileParallelism: true,
    maxWorkers: 2,
    // The JSON report feeds .ci/run's one-line count; vitest's own summary is for people.
    reporters: ['default', 'json'],
    outputFile: { json: 'vt.json' },
  },
});
