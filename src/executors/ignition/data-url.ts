/** RFC 2397 data URLs as Ignition reads them: `data:,` followed by percent-encoded text. */

const PLAIN_PREFIX = 'data:,';

export function toDataUrl(text: string): string {
  return PLAIN_PREFIX + encodeURIComponent(text);
}

/** Decodes a `data:,…` (or `data:;base64,…`) URL back to text. Throws on anything else. */
export function fromDataUrl(url: string): string {
  const comma = url.indexOf(',');
  if (!url.startsWith('data:') || comma < 0) throw new Error(`not a data URL: ${url.slice(0, 40)}`);
  const meta = url.slice(5, comma);
  const payload = url.slice(comma + 1);
  if (meta.split(';').includes('base64')) return Buffer.from(decodeURIComponent(payload), 'base64').toString('utf8');
  return decodeURIComponent(payload);
}
