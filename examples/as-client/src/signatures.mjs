// The T8 message-signature profile with the http-message-signatures library (RFC 9421) and
// Content-Digest (RFC 9530): signing the AS's requests, verifying the SCEF's responses and
// notifications.
import { createHash, randomBytes } from 'node:crypto';
import { compactDecrypt } from 'jose';
import { createSigner, httpbis } from 'http-message-signatures';

/** The label of every T8 signature, the AS's and the SCEF's. */
export const LABEL = 'sig1';
/** How old a `created` may be, and how far ahead of our clock, in seconds (the SCEF's defaults). */
export const WINDOW_S = 60;
export const SKEW_S = 10;

/** Covered on every request; `content-digest` and `content-type` follow when there is a body. */
const REQUEST_COMPONENTS = ['@method', '@target-uri', 'authorization'];
const BODY_COMPONENTS = ['content-digest', 'content-type'];
/** The response signature covers the request's signature: proof the answer is to this request. */
const REQUEST_SIGNATURE_COMPONENT = `"signature";req;key="${LABEL}"`;

/** RFC 9530 Content-Digest with sha-256. */
export function contentDigest(bytes) {
  return `sha-256=:${createHash('sha256').update(bytes).digest('base64')}:`;
}

/** True when a Content-Digest field lists a sha-256 or sha-512 digest equal to the bytes'. */
export function digestMatches(field, bytes) {
  if (typeof field !== 'string') return false;
  let matched = false;
  for (const member of field.split(',')) {
    const m = /^\s*(sha-256|sha-512)=:([A-Za-z0-9+/=]+):\s*$/.exec(member);
    if (!m) continue;
    const mine = createHash(m[1] === 'sha-256' ? 'sha256' : 'sha512')
      .update(bytes)
      .digest('base64');
    if (mine !== m[2]) return false;
    matched = true;
  }
  return matched;
}

/**
 * Signs a T8 request: label `sig1`; `@method`, `@target-uri`, `authorization`, plus
 * `content-digest` and `content-type` when there is a body; `created` (now), a fresh 128-bit
 * base64url `nonce`, `keyid` (the signing key's RFC 7638 thumbprint) and `alg`. Returns the
 * headers with `Signature-Input` and `Signature` added.
 */
export async function signRequest(bundle, { method, url, headers, body }) {
  const hasBody = body !== undefined && body.length > 0;
  const all = { ...headers };
  if (hasBody) all['content-digest'] = contentDigest(body);
  const signed = await httpbis.signMessage(
    {
      key: createSigner(bundle.signing.privateKey, bundle.signing.alg, bundle.signing.keyid),
      name: LABEL,
      fields: hasBody ? [...REQUEST_COMPONENTS, ...BODY_COMPONENTS] : REQUEST_COMPONENTS,
      params: ['created', 'nonce', 'keyid', 'alg'],
      paramValues: { created: new Date(), nonce: randomBytes(16).toString('base64url') },
    },
    { method, url, headers: all },
  );
  return signed.headers;
}

/** Why a message was not accepted: the receiver maps `kind` to its answer. */
export class Refused extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

/** The parameters of the `sig1` member of a Signature-Input field, as a plain object. */
function signatureParams(signatureInput) {
  const member = (signatureInput ?? '').split(/,(?=\s*[A-Za-z*][A-Za-z0-9_.*-]*=\()/).find(m => m.trim().startsWith(`${LABEL}=`));
  if (!member) return undefined;
  const params = {};
  for (const m of member.slice(member.indexOf(')') + 1).matchAll(/;([a-z]+)=("[^"]*"|[^;]+)/g)) params[m[1]] = m[2].replace(/^"|"$/g, '');
  return { components: member.slice(member.indexOf('(') + 1, member.indexOf(')')), params };
}

/**
 * Verifies an RFC 9421 signature of the SCEF with the library: the `sig1` signature must cover
 * `required`, carry `created` within the window (and `nonce` for notifications), and verify
 * with the JWKS key its `keyid` names. Returns the signature's parameters.
 */
async function verifySignature(keyLookup, message, request, { required, requiredParams }) {
  const sig = signatureParams(message.headers['signature-input']);
  if (!sig) throw new Refused('signature', 'no sig1 signature');
  for (const c of required) if (!sig.components.includes(c)) throw new Refused('signature', `the signature does not cover ${c}`);
  const created = Number(sig.params.created);
  const now = Math.floor(Date.now() / 1000);
  if (!Number.isInteger(created) || now - created > WINDOW_S || created - now > SKEW_S) throw new Refused('stale', 'created is outside the accepted window');
  let ok;
  try {
    ok = await httpbis.verifyMessage(
      {
        keyLookup,
        requiredParams,
        requiredFields: required.map(c => c.replace(/^"([^"]+)".*$/, '$1')),
        // The window is checked above; the library's own created check only keeps future ones out.
        notAfter: now + SKEW_S,
      },
      message,
      ...(request ? [request] : []),
    );
  } catch (err) {
    throw new Refused('signature', `signature refused: ${err.message}`);
  }
  if (ok !== true) throw new Refused('signature', ok === null ? `no key of the SCEF JWKS has keyid ${sig.params.keyid}` : 'the signature does not verify');
  return sig.params;
}

/**
 * Verifies a T8 response: its Content-Digest against the body, then the SCEF's signature over
 * `@status`, `content-digest`, `content-type` (when there is one) and the request's signature
 * (`"signature";req;key="sig1"`).
 */
export async function verifyResponse(keyLookup, { status, headers, body }, signedRequest) {
  if (!digestMatches(headers['content-digest'], body)) throw new Refused('digest', 'Content-Digest does not match the body');
  const required = ['@status', 'content-digest', ...(headers['content-type'] ? ['content-type'] : []), REQUEST_SIGNATURE_COMPONENT];
  return verifySignature(keyLookup, { status, headers }, signedRequest, { required, requiredParams: ['created', 'keyid'] });
}

/**
 * Verifies a notification from the SCEF: Content-Digest, then the signature over `@method`,
 * `@target-uri`, `content-digest` and `content-type` with `created`, `nonce` and `keyid`.
 */
export async function verifyNotification(keyLookup, { method, url, headers, body }) {
  if (!digestMatches(headers['content-digest'], body)) throw new Refused('digest', 'Content-Digest does not match the body');
  return verifySignature(keyLookup, { method, url, headers }, undefined, {
    required: ['@method', '@target-uri', 'content-digest', 'content-type'],
    requiredParams: ['created', 'nonce', 'keyid'],
  });
}

/** The JSON of a body: decrypted first when it is a compact JWE (`application/jose`). */
export async function openBody(bundle, contentType, body) {
  if (body.length === 0) return { json: undefined, encrypted: false };
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/jose') {
    const { plaintext, protectedHeader } = await compactDecrypt(body.toString('ascii'), bundle.decryptionKey, {
      keyManagementAlgorithms: ['ECDH-ES+A256KW'],
      contentEncryptionAlgorithms: ['A256GCM'],
    });
    return { json: JSON.parse(Buffer.from(plaintext).toString('utf8')), encrypted: true, jwe: protectedHeader };
  }
  if (type === 'application/json' || type.endsWith('+json')) return { json: JSON.parse(body.toString('utf8')), encrypted: false };
  throw new Refused('media-type', `unexpected content type ${type || '(none)'}`);
}
