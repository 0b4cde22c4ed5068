/** What `buildman`'s exit status means, so scripts can branch on it. */
export const ExitCode = {
  OK: 0,
  /** The build did not reach `complete` (or another request failed). */
  FAILED: 1,
  /** Bad arguments, a bad config file, or a request the server refused as malformed. */
  USAGE: 2,
  /** The buildman server could not be reached. */
  UNREACHABLE: 3,
  /** No such build. */
  NOT_FOUND: 4,
} as const;

export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];
