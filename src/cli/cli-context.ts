/** Where a command writes and what it reads, so tests can run the CLI in-process. */
export interface CliContext {
  stdout(text: string): void;
  stderr(text: string): void;
  env: NodeJS.ProcessEnv;
  /** Set by a command that ends with a status of its own (e.g. `worker`); 0 otherwise. */
  exitCode: number;
}

export function processContext(): CliContext {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    exitCode: 0,
  };
}
