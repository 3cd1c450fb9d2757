/** The kinds of identity this operator issues; each is the first path segment of a SPIFFE ID. */
export type IdentityKind = 'svc' | 'as' | 'operator';

/** Every {@link IdentityKind}, for validation and exhaustive checks. */
export const IDENTITY_KINDS: readonly IdentityKind[] = ['svc', 'as', 'operator'];

/**
 * A trust domain as the SPIFFE ID standard allows it: lower-case letters, digits, `.`, `-`, `_`.
 * Upper case is refused rather than folded, so one identity has one spelling.
 */
const TRUST_DOMAIN_RE = /^[a-z0-9._-]{1,255}$/;

/**
 * A workload name (service, scsAsId, operator). SPIFFE path segments allow upper case, and
 * scsAsIds are chosen by operators, so upper case is kept; the 64 characters bound keeps
 * certificates and log lines small.
 */
const NAME_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** A generic SPIFFE path segment (any ID we accept from a peer, not only ones we issue). */
const SEGMENT_RE = /^[A-Za-z0-9._-]+$/;

const SPIFFE_SCHEME = 'spiffe://';

/** The parts of a SPIFFE ID of the form `spiffe://<trustDomain>/<kind>/<name>`. */
export interface SpiffeIdParts {
  readonly trustDomain: string;
  readonly kind: IdentityKind;
  readonly name: string;
}

/** True for a trust domain that {@link spiffeId} accepts. */
export function isValidTrustDomain(trustDomain: string): boolean {
  return typeof trustDomain === 'string' && TRUST_DOMAIN_RE.test(trustDomain) && !/^\.+$/.test(trustDomain);
}

/** True for a workload name (service name, scsAsId, operator name) that {@link spiffeId} accepts. */
export function isValidIdentityName(name: string): boolean {
  return typeof name === 'string' && NAME_RE.test(name) && name !== '.' && name !== '..';
}

/**
 * Builds the SPIFFE ID put in a certificate's URI SAN: `spiffe://<trustDomain>/<kind>/<name>`.
 * The mesh authorizes callers by this string and the edge maps an AS certificate to its scsAsId
 * through it, so anything that could make two spellings of one identity, or smuggle a separator
 * into a SAN, is refused here.
 *
 * @throws TypeError when the trust domain, kind or name is malformed.
 */
export function spiffeId(trustDomain: string, kind: IdentityKind, name: string): string {
  if (!isValidTrustDomain(trustDomain)) {
    throw new TypeError(`invalid trust domain ${JSON.stringify(trustDomain)}: expected [a-z0-9._-]{1,255}`);
  }
  if (!IDENTITY_KINDS.includes(kind)) {
    throw new TypeError(`invalid identity kind ${JSON.stringify(kind)}: expected one of ${IDENTITY_KINDS.join(', ')}`);
  }
  if (!isValidIdentityName(name)) {
    throw new TypeError(`invalid ${kind} name ${JSON.stringify(name)}: expected [A-Za-z0-9._-]{1,64}`);
  }
  return `${SPIFFE_SCHEME}${trustDomain}/${kind}/${name}`;
}

/**
 * Splits a SPIFFE ID issued by this PKI back into its parts, or returns undefined when the string
 * is not exactly `spiffe://<trustDomain>/<kind>/<name>` with valid parts. Callers compare the
 * trust domain themselves: an ID from another trust domain parses but must not be trusted.
 */
export function parseSpiffeId(id: string): SpiffeIdParts | undefined {
  if (typeof id !== 'string' || !id.startsWith(SPIFFE_SCHEME)) return undefined;
  const parts = id.slice(SPIFFE_SCHEME.length).split('/');
  if (parts.length !== 3) return undefined;
  const [trustDomain, kind, name] = parts as [string, string, string];
  if (!isValidTrustDomain(trustDomain)) return undefined;
  if (!(IDENTITY_KINDS as readonly string[]).includes(kind)) return undefined;
  if (!isValidIdentityName(name)) return undefined;
  return { trustDomain, kind: kind as IdentityKind, name };
}

/** True for a syntactically valid SPIFFE ID (any path), per the SPIFFE ID standard. */
function isValidSpiffeIdSyntax(id: string): boolean {
  if (!id.startsWith(SPIFFE_SCHEME)) return false;
  const rest = id.slice(SPIFFE_SCHEME.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash < 0 ? rest : rest.slice(0, slash);
  if (!isValidTrustDomain(trustDomain)) return false;
  if (slash < 0) return true;
  return rest
    .slice(slash + 1)
    .split('/')
    .every(seg => SEGMENT_RE.test(seg) && seg !== '.' && seg !== '..');
}

interface AltName {
  readonly type: string;
  readonly value: string;
}

/**
 * Parses node's `subjectaltname` string ("DNS:a, URI:spiffe://..., IP Address:127.0.0.1").
 * Since the fix for CVE-2021-44532 node prints a value that holds `,`, `"` or control
 * characters as a JSON string, so a quoted value is decoded as JSON rather than split on `, `:
 * splitting naively would let a SAN such as `DNS:x, URI:spiffe://td/svc/edge` inject an identity.
 * Returns undefined when the string is malformed.
 */
function parseSubjectAltName(text: string): AltName[] | undefined {
  const out: AltName[] = [];
  let i = 0;
  while (i < text.length) {
    const colon = text.indexOf(':', i);
    if (colon < 0) return undefined;
    const type = text.slice(i, colon);
    let j = colon + 1;
    let value: string;
    if (text[j] === '"') {
      let k = j + 1;
      while (k < text.length && text[k] !== '"') k += text[k] === '\\' ? 2 : 1;
      if (k >= text.length) return undefined;
      try {
        value = JSON.parse(text.slice(j, k + 1)) as string;
      } catch {
        return undefined;
      }
      j = k + 1;
    } else {
      const end = text.indexOf(', ', j);
      j = end < 0 ? text.length : end;
      value = text.slice(colon + 1, j);
    }
    out.push({ type, value });
    if (j === text.length) break;
    if (!text.startsWith(', ', j)) return undefined;
    i = j + 2;
  }
  return out;
}

/**
 * Returns the SPIFFE IDs in a peer certificate's URI SANs, from node's
 * `tls.PeerCertificate.subjectaltname` (or `crypto.X509Certificate.subjectAltName` wrapped as
 * `{ subjectaltname }`). Only syntactically valid SPIFFE IDs are returned, and a malformed SAN
 * string yields none, so a caller that authorizes by the result fails closed. An X509-SVID
 * carries exactly one; see {@link peerSpiffeId}.
 */
export function spiffeIdsOfPeer(cert: { subjectaltname?: string | undefined }): string[] {
  const text = cert?.subjectaltname;
  if (typeof text !== 'string' || text.length === 0) return [];
  const names = parseSubjectAltName(text);
  if (!names) return [];
  return names.filter(n => n.type === 'URI' && isValidSpiffeIdSyntax(n.value)).map(n => n.value);
}

/**
 * The peer's one SPIFFE ID, or undefined when the certificate has none or more than one: the
 * X509-SVID rules allow exactly one, and guessing between several would let a certificate
 * choose which identity it is authorized as.
 */
export function peerSpiffeId(cert: { subjectaltname?: string | undefined }): string | undefined {
  const ids = spiffeIdsOfPeer(cert);
  return ids.length === 1 ? ids[0] : undefined;
}
