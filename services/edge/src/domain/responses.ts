/**
 * What the edge answers, as plain data: a status, headers and a JSON body. The domain builds
 * these and the handlers write them, so every error shape is decided here and nothing written to
 * a client can carry a stack trace or an exception message by accident.
 */
export interface EdgeResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  /** Serialised as JSON; undefined means an empty body. Ignored when `bytes` is set. */
  readonly body: unknown;
  /** The exact body bytes (a relayed T8 body, a JWE): written as they are, after signing. */
  readonly bytes?: Uint8Array;
}

/** `application/problem+json` (RFC 9457, the ProblemDetails of TS 29.122). */
export const PROBLEM_JSON = 'application/problem+json';
export const JSON_MEDIA_TYPE = 'application/json';

const TITLES: Readonly<Record<number, string>> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  406: 'Not Acceptable',
  408: 'Request Timeout',
  411: 'Length Required',
  413: 'Content Too Large',
  415: 'Unsupported Media Type',
  421: 'Misdirected Request',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** One entry of ProblemDetails `invalidParams`. */
export interface InvalidParam {
  readonly param: string;
  readonly reason?: string;
}

/**
 * A ProblemDetails response. `detail` is always a fixed text chosen by the edge, never an error
 * message from elsewhere, so it cannot leak secrets or say which credential check failed.
 */
export function problem(
  status: number,
  detail: string,
  extra: { cause?: string; invalidParams?: readonly InvalidParam[]; headers?: Readonly<Record<string, string>> } = {},
): EdgeResponse {
  const body: Record<string, unknown> = { status, title: TITLES[status] ?? 'Error', detail };
  if (extra.cause !== undefined) body['cause'] = extra.cause;
  if (extra.invalidParams !== undefined && extra.invalidParams.length > 0) body['invalidParams'] = extra.invalidParams;
  return { status, headers: { 'content-type': PROBLEM_JSON, 'cache-control': 'no-store', ...extra.headers }, body };
}
