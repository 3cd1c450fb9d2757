import {
  computeContentDigest,
  ContentDigestError,
  NONCE_MAX_CHARS,
  NONCE_MIN_BYTES,
  SignatureError,
  signMessage,
  verifyContentDigest,
  verifyMessageSignatureSync,
} from '@aese/http-signatures';
import type { HttpMessageView, NonceRule, ResolvedKey, VerifiedSignature } from '@aese/http-signatures';
import type { SigningKey } from './delegated-signing-key.js';

/** The label of the AS's request signature and of the SCEF's response signature (T8 profile section 4). */
export const SIGNATURE_LABEL = 'sig1';
/** How old a request's `created` may be, in seconds (the same window as the replay guard's). */
export const DEFAULT_SIGNATURE_WINDOW_S = 60;
/** How far ahead of the edge's clock `created` may be, in seconds. */
export const DEFAULT_SIGNATURE_SKEW_S = 10;
/** Covered on every T8 request. */
export const T8_REQUEST_COMPONENTS = Object.freeze(['@method', '@target-uri', 'authorization'] as const);
/** Covered in addition when the request has a body. */
export const T8_BODY_COMPONENTS = Object.freeze(['content-digest', 'content-type'] as const);
/** Parameters every AS signature must carry. */
export const T8_REQUIRED_PARAMS = Object.freeze(['created', 'nonce', 'keyid'] as const);
/**
 * What a request's `nonce` must be (T8 profile section 4: at least 128 bits, base64url): unpadded
 * base64url decoding to 16 bytes or more, at most 128 characters. Checked with the other
 * parameters, before any cryptography and before the replay guard is asked.
 */
export const T8_NONCE_RULE: NonceRule = { minBytes: NONCE_MIN_BYTES, maxChars: NONCE_MAX_CHARS };
/** Parameters an AS signature may carry; anything else (`crit`, say) is refused. */
export const T8_ALLOWED_PARAMS = Object.freeze(['created', 'nonce', 'keyid', 'alg', 'expires', 'tag'] as const);
/**
 * The one `tag` an AS request signature may carry. A signature tagged for another purpose (a
 * notification, a response) must not pass as a request: the application, not the signer, says
 * what a signature is for (RFC 9421 section 2.3).
 */
export const T8_REQUEST_TAG = 't8-request';

/** Everything a request with a body must cover; built once, not per request. */
const T8_REQUEST_WITH_BODY_COMPONENTS = Object.freeze([...T8_REQUEST_COMPONENTS, ...T8_BODY_COMPONENTS]);

/** Field lines of a request by lower-case name, pseudo-headers left out. */
export type FieldLines = Readonly<Record<string, readonly string[]>>;

/**
 * The parts of a T8 request its signature covers, as the signature library reads them.
 * `requestTarget` is the request target exactly as received (HTTP/1.1 request-target, HTTP/2
 * `:path`): `@target-uri` is `https://<authority>` followed by it, never a normalised URL, so a
 * signature over `/a/b` does not verify for `/a/x/../b`, `/a//b` or `/a/%62` (RFC 9421
 * section 2.2.2). The same string is what the edge routes and forwards.
 */
export function requestView(method: string, requestTarget: string, authority: string, fields: FieldLines): HttpMessageView {
  return { method, targetUri: `https://${authority}${requestTarget}`, authority, headers: fields, lowerCaseNames: true };
}

/** True when the request carries any signature field (a signature to verify, good or bad). */
export function isSigned(fields: FieldLines): boolean {
  return fields['signature-input'] !== undefined || fields['signature'] !== undefined;
}

export interface RequestSignatureCheck {
  readonly view: HttpMessageView;
  /** The received body; empty when there is none. */
  readonly body: Uint8Array;
  /** This AS's registered keys: a keyid of any other AS is unknown here (SECURITY-TESTS 7). */
  readonly keys: ReadonlyMap<string, ResolvedKey>;
  readonly nowS: number;
  readonly windowS: number;
  readonly skewS: number;
}

/** A refused request signature or digest, with the stable reason the audit trail records. */
export class RequestSignatureRefused extends Error {
  override readonly name = 'RequestSignatureRefused';
  constructor(
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`request signature refused: ${reason}`, options);
  }
}

/**
 * Verifies an AS's request signature (RFC 9421) as the T8 profile section 4 says, then the
 * body's `Content-Digest` (RFC 9530, sha-256/sha-512 only) against the received bytes, before
 * anything parses the body. The digest is required and covered whenever there is a body.
 *
 * @throws RequestSignatureRefused with reason `SIGNATURE_<library reason>` (a malformed nonce:
 *   `SIGNATURE_NONCE_INVALID`), `DIGEST_<reason>` or `SIGNATURE_TAG_NOT_ALLOWED`
 */
export function verifyRequestSignature(check: RequestSignatureCheck): VerifiedSignature {
  const hasBody = check.body.length > 0;
  let verified: VerifiedSignature;
  try {
    verified = verifyMessageSignatureSync(check.view, {
      label: SIGNATURE_LABEL,
      requiredComponents: hasBody ? T8_REQUEST_WITH_BODY_COMPONENTS : T8_REQUEST_COMPONENTS,
      requiredParams: T8_REQUIRED_PARAMS,
      allowedParams: T8_ALLOWED_PARAMS,
      nonce: T8_NONCE_RULE,
      validity: { nowSeconds: check.nowS, maxAgeSeconds: check.windowS, maxFutureSeconds: check.skewS },
      resolveKey: keyid => check.keys.get(keyid),
    });
  } catch (err) {
    if (err instanceof SignatureError) throw new RequestSignatureRefused(`SIGNATURE_${err.reason}`, { cause: err });
    throw err;
  }
  if (verified.tag !== undefined && verified.tag !== T8_REQUEST_TAG) {
    throw new RequestSignatureRefused('SIGNATURE_TAG_NOT_ALLOWED');
  }
  if (hasBody) checkDigest(check.view, check.body);
  return verified;
}

/**
 * Checks a body's `Content-Digest`. For a signed request it is covered and required; an unsigned
 * request (profile `optional`) that sends one still gets it checked, so a wrong digest never
 * passes silently.
 */
export function checkDigest(view: HttpMessageView, body: Uint8Array): void {
  try {
    verifyContentDigest(view.headers['content-digest'], body);
  } catch (err) {
    if (err instanceof ContentDigestError) throw new RequestSignatureRefused(err.reason, { cause: err });
    throw err;
  }
}

/** A T8 response about to be written: status, media type and the exact body bytes. */
export interface ResponseToSign {
  readonly status: number;
  readonly contentType: string | undefined;
  readonly body: Uint8Array;
  /** The request's verified signature, when it had one: the response signature covers it (`;req`). */
  readonly signedRequest: HttpMessageView | undefined;
}

/** The request's signature as a response covers it: one spelling, so its parse is looked up, not redone. */
const REQUEST_SIGNATURE_COMPONENT = `signature;req;key="${SIGNATURE_LABEL}"`;

/**
 * Signs a T8 response (T8 profile section 4): `Content-Digest` of the body, then an RFC 9421
 * signature labelled `sig1` over `@status`, `content-digest`, `content-type` (when there is one)
 * and, when the request was signed, the request's signature (`"signature";req;key="sig1"`), with
 * `created` and the `keyid` of the delegated key published in the JWKS. Returns the three
 * header fields to add.
 */
export function signResponse(response: ResponseToSign, key: SigningKey, nowS: number): Record<string, string> {
  const digest = computeContentDigest(response.body, 'sha-256');
  const headers: Record<string, string> = { 'content-digest': digest };
  if (response.contentType !== undefined) headers['content-type'] = response.contentType;
  const components = ['@status', 'content-digest'];
  if (response.contentType !== undefined) components.push('content-type');
  if (response.signedRequest) components.push(REQUEST_SIGNATURE_COMPONENT);
  const signed = signMessage(
    { status: response.status, headers },
    {
      label: SIGNATURE_LABEL,
      components,
      params: { created: nowS, keyid: key.kid },
      key: key.key,
      alg: key.alg,
      ...(response.signedRequest ? { request: response.signedRequest } : {}),
    },
  );
  return { 'content-digest': digest, 'signature-input': signed.signatureInput, signature: signed.signature };
}
