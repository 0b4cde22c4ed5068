/**
 * Build log lines travel as Docker jsonmessage JSON, the shape quay-builder sends and Quay's
 * manager unwraps (first of `error`, `status`, `stream`).
 */

export type JsonMessage = { stream: string } | { status: string } | { error: string };

export const streamMessage = (text: string): JsonMessage => ({ stream: text.endsWith('\n') ? text : text + '\n' });
export const statusMessage = (text: string): JsonMessage => ({ status: text });
export const errorMessage = (text: string): JsonMessage => ({ error: text });

const BUILDAH_STEP = /^STEP (\d+)\/(\d+): (.*)$/;

/**
 * buildah and podman print `STEP 1/3: FROM scratch`; Quay detects commands only in Docker's
 * `Step 1/3 : FROM scratch` form, so the line is rewritten to Docker's spelling.
 */
export function dockerStepLine(line: string): string {
  const m = BUILDAH_STEP.exec(line);
  return m ? `Step ${m[1]}/${m[2]} : ${m[3]}` : line;
}
