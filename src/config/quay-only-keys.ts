/**
 * Top-level keys of a Quay `config.yaml` that buildman has no use for and ignores without a warning,
 * so pointing buildman at a real Quay config does not bury the operator in warnings. Any other key
 * (a typo such as `BUILDMAN_GRPC_PROT`, a key from some other product) is still reported.
 */

/** Families of keys, by prefix. `BUILDMAN_` is deliberately absent: those are ours, so typos must show. */
const QUAY_PREFIXES = [
  'FEATURE_', // ~60 feature flags; FEATURE_BUILD_SUPPORT is read, the rest are ignored
  'ACTION_LOG_',
  'AUTHENTICATION_',
  'AVATAR_',
  'BITBUCKET_',
  'BLACKLIST',
  'BROWSER_API_',
  'BUILDLOGS_',
  'CONTACT_',
  'DATA_MODEL_',
  'DB_',
  'DEFAULT_',
  'DISTRIBUTED_STORAGE_',
  'ENTERPRISE_',
  'EXTERNAL_TLS_',
  'FRESH_LOGIN_',
  'GITHUB_',
  'GITLAB_',
  'GOOGLE_',
  'GPG2_',
  'LDAP_',
  'LOG_ARCHIVE_',
  'LOGS_MODEL',
  'MAIL_',
  'OIDC_',
  'PROMETHEUS_',
  'PUSH_TEMP_TAG_',
  'QUOTA_',
  'REGISTRY_',
  'REPO_MIRROR_',
  'RHSSO_',
  'SEARCH_',
  'SECURITY_SCANNER_',
  'SESSION_',
  'SSL_',
  'STORAGE_',
  'SUPER_USER',
  'TAG_EXPIRATION_',
  'TEAM_',
  'USER_',
  'USERFILES_',
];

/** Single keys seen in generated and hand-written Quay configs. */
const QUAY_KEYS = new Set([
  'ACCOUNT_RECOVERY_MODE',
  'ALLOW_PULLS_WITHOUT_STRICT_LOGGING',
  'ALLOWED_OCI_ARTIFACT_TYPES',
  'APP_SPECIFIC_TOKEN_EXPIRATION',
  'BITTORRENT_FILENAME_PEPPER',
  'BUILDMAN_CONTROLLER_PORT', // read by Quay, used by nothing (reference §0)
  'CREATE_NAMESPACE_ON_PUSH',
  'CREATE_PRIVATE_REPO_ON_PUSH',
  'DATABASE_SECRET_KEY',
  'EXPIRED_APP_SPECIFIC_TOKEN_GC',
  'GLOBAL_READONLY_SUPER_USERS',
  'HEALTH_CHECKER',
  'INSTANCE_SERVICE_KEY_EXPIRATION',
  'INSTANCE_SERVICE_KEY_REFRESH',
  'LOCAL_OAUTH_HANDLER',
  'MAXIMUM_LAYER_SIZE',
  'NOT_RUNNING_IN_DOCKER_CONTAINER',
  'PUBLIC_NAMESPACES',
  'RECAPTCHA_SECRET_KEY',
  'RECAPTCHA_SITE_KEY',
  'SECRET_KEY',
  'SERVER_PORT',
  'SETUP_COMPLETE',
  'SIGNING_ENGINE',
  'SUPERUSERS_FULL_ACCESS',
  'TESTING',
  'USE_CDN',
  'V3_UPGRADE_MODE',
  'WEBHOOK_HOSTNAME_BLACKLIST',
]);

/** Whether a top-level key is a Quay key buildman ignores silently. */
export function isQuayOnlyKey(key: string): boolean {
  return QUAY_KEYS.has(key) || QUAY_PREFIXES.some((prefix) => key.startsWith(prefix));
}
