import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Http2ServerRequest, Http2ServerResponse, Http2Session } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { AuthorityFields } from './domain/authority.js';
import type { EdgeResponse } from './domain/responses.js';

/** A request on the T8 listener, over HTTP/1.1 or HTTP/2 (the compatibility API). */
export type EdgeRequest = IncomingMessage | Http2ServerRequest;
export type EdgeServerResponse = ServerResponse | Http2ServerResponse;

/** Why a request body could not be read. */
export type BodyErrorKind = 'too-large' | 'timeout' | 'aborted';

export class BodyError extends Error {
  override readonly name = 'BodyError';
  constructor(readonly kind: BodyErrorKind) {
    super(`request body ${kind}`);
  }
}

export function isHttp2(req: EdgeRequest): req is Http2ServerRequest {
  return req.httpVersionMajor === 2;
}

/** The connection a request came on: its TLS socket and a way to drop it. */
export interface Connection {
  /** Stable per connection (the HTTP/2 session, or the HTTP/1.1 socket): a memo key. */
  readonly key: object;
  /** The TLS socket; for HTTP/2 node hands out a proxy that still answers TLS queries. */
  readonly tls: TLSSocket;
  /** Tears the whole connection down without an HTTP answer. */
  kill(): void;
}

export function connectionOf(req: EdgeRequest): Connection {
  if (isHttp2(req)) {
    const session: Http2Session | undefined = req.stream.session;
    return {
      key: session ?? req.stream,
      tls: req.socket as unknown as TLSSocket,
      kill: () => (session ? session.destroy() : req.stream.destroy()),
    };
  }
  const socket = req.socket as TLSSocket;
  return { key: socket, tls: socket, kill: () => socket.destroy() };
}

/**
 * The size of a request's header list as HTTP/2 counts it (RFC 9113 section 6.5.2: name and
 * value octets plus 32 per field). HTTP/2's advertised limit only binds once the client has
 * acknowledged the server's SETTINGS, so the handler checks it again for every request.
 */
export function headerListSize(req: EdgeRequest): number {
  let size = 0;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) size += Buffer.byteLength(raw[i]) + Buffer.byteLength(raw[i + 1]) + 32;
  return size;
}

/**
 * A header (or an HTTP/2 pseudo-header) as one string; a repeated one gives `''`, which matches
 * nothing. Counted on `rawHeaders`: node's `headers` keeps only the first of two `Host`,
 * `Content-Type`, `Authorization` ... lines, which would pass a repeat off as one line.
 */
export function singleHeader(req: EdgeRequest, name: string): string | undefined {
  let value: string | undefined;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i].toLowerCase() !== name) continue;
    if (value !== undefined) return '';
    value = raw[i + 1]!;
  }
  return value;
}

const EMPTY_BODY = Buffer.alloc(0);

/**
 * Reads a request body up to `maxBytes`, refusing early on a larger Content-Length and stopping
 * as soon as a chunked body goes over, and giving up after `timeoutMs` (HTTP/2 has no
 * `requestTimeout`, so a slow body is bounded here). A request known to have no body gets its
 * empty body at once, not as a promise; a refused Content-Length throws.
 */
export function readBody(req: EdgeRequest, maxBytes: number, timeoutMs: number): Buffer | Promise<Buffer> {
  const declared = singleHeader(req, 'content-length');
  if (declared !== undefined && (!/^[0-9]{1,15}$/.test(declared) || Number(declared) > maxBytes)) {
    throw new BodyError('too-large');
  }
  // A request known to have no body gets no listeners, timer or stream turns (most GETs): an
  // HTTP/2 stream that ended with its HEADERS frame, an HTTP/1.1 message without Content-Length
  // and Transfer-Encoding (RFC 9112 section 6.3: its body has length zero) or one the parser has
  // finished with nothing buffered. Node discards the ended stream itself.
  if (isHttp2(req)) {
    if (req.stream.endAfterHeaders) return EMPTY_BODY;
  } else if ((declared === undefined && singleHeader(req, 'transfer-encoding') === undefined) || (req.complete && req.readableLength === 0)) {
    return EMPTY_BODY;
  }
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const cleanup = (): void => {
      clearTimeout(timer);
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onAbort);
      req.off('aborted', onAbort);
    };
    const fail = (kind: BodyErrorKind): void => {
      cleanup();
      reject(new BodyError(kind));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > maxBytes) fail('too-large');
      else chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(Buffer.concat(chunks, size));
    };
    const onAbort = (): void => fail('aborted');
    const timer = setTimeout(() => fail('timeout'), timeoutMs);
    timer.unref();
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onAbort);
    req.on('aborted', onAbort);
  });
}

/** Headers on every answer. */
const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'x-content-type-options': 'nosniff',
  'strict-transport-security': 'max-age=31536000',
};

/**
 * Writes an {@link EdgeResponse}. With `close`, an HTTP/1.1 connection is closed after the answer
 * (the unread rest of a refused body is not worth reading); an HTTP/2 stream is reset by node
 * once the answer is sent, and the session lives on.
 */
export function writeResponse(req: EdgeRequest, res: EdgeServerResponse, response: EdgeResponse, options: { close?: boolean } = {}): void {
  if (res.headersSent) {
    connectionOf(req).kill();
    return;
  }
  const payload = serialisedBody(response);
  const headers: Record<string, string> = { ...COMMON_HEADERS, ...response.headers, 'content-length': String(payload.length) };
  if (options.close && !isHttp2(req)) headers['connection'] = 'close';
  res.writeHead(response.status, headers);
  if (req.method === 'HEAD') res.end();
  else res.end(payload);
}

/** The bytes of a response body: `bytes` as they are, or `body` as JSON, or nothing. */
export function serialisedBody(response: EdgeResponse): Buffer {
  if (response.bytes !== undefined) return Buffer.from(response.bytes.buffer, response.bytes.byteOffset, response.bytes.byteLength);
  return response.body === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(response.body), 'utf8');
}

/**
 * Every field line of a request by lower-case name, in received order, pseudo-headers left out.
 * Built from `rawHeaders` for HTTP/1.1 and HTTP/2 alike: node's `headers` object drops repeated
 * `authorization`, `content-type` ... lines silently, and HTTP/2 has no `headersDistinct`.
 */
export function fieldLinesOf(req: EdgeRequest): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name.startsWith(':')) continue;
    (out[name] ??= []).push(raw[i + 1]);
  }
  return out;
}

/**
 * What names a request's authority, every line of it: `req.headers` keeps only the first of two
 * `Host` lines, so they are read from `rawHeaders` (see `requestAuthority`).
 */
export function authorityFieldsOf(req: EdgeRequest): AuthorityFields {
  const pseudoAuthorities: string[] = [];
  const hostLines: string[] = [];
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    if (name === ':authority') pseudoAuthorities.push(raw[i + 1]);
    else if (name === 'host') hostLines.push(raw[i + 1]);
  }
  return { pseudoAuthorities, hostLines, target: req.url ?? '' };
}

/**
 * An {@link EdgeResponse} as raw HTTP/1.1 bytes, for the parser errors node reports before a
 * request object exists (a malformed request line, an oversized header block, a header timeout).
 * The connection is closed after it.
 */
export function rawHttp1Response(response: EdgeResponse, reason: string): string {
  const payload = response.body === undefined ? '' : JSON.stringify(response.body);
  const headers: Record<string, string> = {
    ...COMMON_HEADERS,
    ...response.headers,
    'content-length': String(Buffer.byteLength(payload)),
    connection: 'close',
  };
  const lines = Object.entries(headers).map(([k, v]) => `${k}: ${v}`);
  return `HTTP/1.1 ${response.status} ${reason}\r\n${lines.join('\r\n')}\r\n\r\n${payload}`;
}
