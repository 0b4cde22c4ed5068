/**
 * Finds every secret value in a parsed config file, wherever it sits (our keys, executor keys, and
 * the Quay keys we otherwise ignore, such as DB_URI or DISTRIBUTED_STORAGE_CONFIG), so log lines
 * and snapshots can be scrubbed of them.
 */

/**
 * Key names whose values are secret, by their last words: REDIS_PASSWORD, QUAY_PASSWORD,
 * SERVICE_ACCOUNT_TOKEN, AWS_ACCESS_KEY, AWS_SECRET_KEY, SECRET_KEY, s3_secret_key, LDAP_ADMIN_PASSWD,
 * CLIENT_SECRET, SECURITY_SCANNER_V4_PSK, …. Matched case-insensitively: storage configs use lower case.
 */
const SECRET_KEY_NAME =
  /(?:^|_)(?:PASSWORD|PASSWD|PASS|SECRET|TOKEN|PSK|PEPPER|ACCESS_KEY|SECRET_KEY|ACCOUNT_KEY|PRIVATE_KEY|API_KEY)$/i;

/** The password in a URL's user info: `postgresql://quay:hunter22@db/quay` → `hunter22`. */
const URL_PASSWORD = /^[a-z][a-z0-9+.-]*:\/\/[^/?#@:]*:([^/?#@]+)@/i;

/** An inline private key (K8S_API_TLS_KEY given as PEM text rather than a path, a GPG key, …). */
const PEM_PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY( BLOCK)?-----/;

/** Every secret value found in `config`, each once. */
export function collectSecrets(config: unknown): string[] {
  const found = new Set<string>();
  const add = (value: string): void => {
    if (value.trim() !== '') found.add(value);
  };

  const visit = (value: unknown, secretKey: boolean): void => {
    if (typeof value === 'string') {
      if (secretKey || PEM_PRIVATE_KEY.test(value)) add(value);
      const password = URL_PASSWORD.exec(value)?.[1];
      if (password !== undefined) {
        add(password);
        add(safeDecode(password));
      }
    } else if (typeof value === 'number' || typeof value === 'bigint') {
      if (secretKey) add(String(value));
    } else if (Array.isArray(value)) {
      for (const item of value) visit(item, secretKey);
    } else if (value !== null && typeof value === 'object' && !(value instanceof Date)) {
      for (const [key, child] of Object.entries(value)) visit(child, secretKey || SECRET_KEY_NAME.test(key));
    }
  };

  visit(config, false);
  return [...found];
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
