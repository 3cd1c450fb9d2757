/**
 * The parts of an HTTP message that signatures and digests look at, independent of node's
 * http/http2 objects so that the edge, the notifier and tests build it the same way.
 *
 * - a request has `method` and `targetUri` (absolute, e.g. `https://scef.example:8443/3gpp-...?a=b`)
 *   and may set `authority` (the Host / `:authority` value; defaults to the target URI's host).
 *   A receiver builds `targetUri` from the request target exactly as received (HTTP/1.1
 *   request-target, HTTP/2 `:path`): its path and query enter the signature base unchanged;
 * - a response has `status`;
 * - `headers` keys are field names in any case; a value is one field line or the list of field
 *   lines in received order. From node, use `req.headersDistinct` rather than `req.headers`:
 *   node silently drops duplicate `authorization`, `content-type`, ... lines from `headers`.
 */
export interface HttpMessageView {
  readonly method?: string;
  readonly targetUri?: string;
  readonly authority?: string;
  readonly status?: number;
  readonly headers: Readonly<Record<string, string | readonly string[] | undefined>>;
  /**
   * Set when every key of `headers` is already lower case (a receiver that built the map itself,
   * as the edge does): a field is then one property lookup instead of a scan of every name.
   */
  readonly lowerCaseNames?: boolean;
}

/** True for a response view (it has a status), false for a request view. */
export function isResponse(message: HttpMessageView): boolean {
  return message.status !== undefined;
}

/**
 * All field lines of one field, in order, found case-insensitively; `undefined` when the field is
 * absent. A plain object could hold `Content-Type` and `content-type` both: their lines are kept.
 */
export function fieldLines(message: HttpMessageView, name: string): readonly string[] | undefined {
  const wanted = name.toLowerCase();
  const { headers } = message;
  if (message.lowerCaseNames === true) {
    const value = Object.hasOwn(headers, wanted) ? headers[wanted] : undefined;
    if (value === undefined) return undefined;
    if (typeof value === 'string') return [value];
    return value.length > 0 ? value : undefined;
  }
  let lines: string[] | undefined;
  for (const key of Object.keys(headers)) {
    if (key.toLowerCase() !== wanted) continue;
    const value = headers[key];
    if (value === undefined) continue;
    lines ??= [];
    if (typeof value === 'string') lines.push(value);
    else for (const line of value) lines.push(line);
  }
  return lines !== undefined && lines.length > 0 ? lines : undefined;
}

function isOptionalWhitespace(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** The line without leading and trailing spaces and tabs (RFC 9110 OWS). */
function trimOptionalWhitespace(line: string): string {
  let start = 0;
  let end = line.length;
  while (start < end && isOptionalWhitespace(line.charCodeAt(start))) start++;
  while (end > start && isOptionalWhitespace(line.charCodeAt(end - 1))) end--;
  return start === 0 && end === line.length ? line : line.slice(start, end);
}

/**
 * One field's value as RFC 9110 section 5.3 combines field lines: each trimmed, joined by ", ".
 * `undefined` when the field is absent.
 */
export function combinedFieldValue(message: HttpMessageView, name: string): string | undefined {
  const lines = fieldLines(message, name);
  if (lines === undefined) return undefined;
  if (lines.length === 1) return trimOptionalWhitespace(lines[0]);
  return lines.map(trimOptionalWhitespace).join(', ');
}
