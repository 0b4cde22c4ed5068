#!/usr/bin/env node
// The default BUILDER_BINARY_LOCATION: the reference worker, configured only by its environment like quay-builder.
import('../dist/src/worker/main.js').catch((err) => {
  console.error(`buildman-worker: cannot load the compiled worker (${err.message}). Run \`npm run build\` first.`);
  process.exit(70);
});
