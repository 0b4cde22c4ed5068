/**
 * One `REDIS_SENTINELS` entry: `host:port`, or `[v6-address]:port`. Returns undefined when the text
 * is not of that form, so the config schema can say what it expected.
 */
export function parseSentinelAddress(text: string): { host: string; port: number } | undefined {
  const match = /^(?:\[([^\]\s]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (!match) return undefined;
  const port = Number(match[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: match[1] ?? match[2], port };
}
