/** Largest T8 request body read; TS 29.122 bodies are a few kilobytes. */
export const DEFAULT_MAX_T8_BODY_BYTES = 64 * 1024;

/**
 * True when a T8 request body's `Content-Type` is JSON: `application/json` or a `+json` type
 * (`application/json-patch+json`, `application/merge-patch+json`), with at most a UTF-8 charset
 * (RFC 8259 section 8.1). Anything else is refused with 415 before the body is looked at.
 */
export function isJsonContentType(contentType: string | undefined): boolean {
  if (contentType === undefined) return false;
  const [type, ...params] = contentType.split(';').map(p => p.trim().toLowerCase());
  if (type !== 'application/json' && !/^application\/[a-z0-9.+-]{1,64}\+json$/.test(type ?? '')) return false;
  return params.every(p => p === '' || p === 'charset=utf-8' || p === 'charset="utf-8"');
}
