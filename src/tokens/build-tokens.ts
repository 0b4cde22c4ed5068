/** The two build token types (reference §4). */
export type BuildTokenType = 'build_job_registration' | 'build_job_token';

/** The `context` claim of a build token. `expiration` is the lifetime in seconds, as Quay writes it. */
export interface BuildTokenContext {
  token_type: BuildTokenType;
  build_id: string;
  /** The full orchestrator job key, e.g. `building/<uuid>`. */
  job_id: string;
  expiration: number;
}

export interface BuildTokens {
  /** Mints an RS256 JWT with a `kid` header and Quay's claims. */
  mint(type: BuildTokenType, buildId: string, jobId: string, lifetimeSeconds: number): Promise<string>;
  /**
   * Verifies a token of the expected type and returns its context. Throws `TokenError` whose message
   * is the reason Quay's server would put after `Invalid build token: `.
   */
  verify(token: string, expected: BuildTokenType): Promise<BuildTokenContext>;
}
