/**
 * The config buildman runs on when no file is given: everything in one process, nothing to install
 * but Node. The in-memory orchestrator (one instance only), and one local-process executor running
 * this project's own worker, which builds with buildah and, with no SERVER_HOSTNAME, saves images as
 * OCI archives under the data directory instead of pushing them.
 *
 * It is YAML, checked by the same loader as any file, so every default is filled the same way, and
 * `check-config` can show it as a starting point.
 */
export const EMBEDDED_DEFAULT_YAML = `# buildman's embedded default (used when no config file is given)
FEATURE_BUILD_SUPPORT: true
BUILD_MANAGER:
- ephemeral
- ALLOWED_WORKER_COUNT: 1
  ORCHESTRATOR: {}
  EXECUTORS:
  - EXECUTOR: popen
    NAME: local
    # The worker talks to the manager over plaintext gRPC on loopback.
    INSECURE: true
    CONTAINER_RUNTIME: buildah
    SETUP_TIME: 500
`;

/** How the embedded default is named in messages. */
export const EMBEDDED_DEFAULT_SOURCE = '(embedded default config)';
