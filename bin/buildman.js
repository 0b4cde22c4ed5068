#!/usr/bin/env node
// Runs the compiled CLI; `npm install` compiles it (the `prepare` script).
import('../dist/src/cli/main.js').catch((err) => {
  console.error(`buildman: cannot load the compiled CLI (${err.message}). Run \`npm run build\` first.`);
  process.exit(70);
});
