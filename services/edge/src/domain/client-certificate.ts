/** OID of the TLS Web Client Authentication extended key usage. */
export const CLIENT_AUTH_EKU = '1.3.6.1.5.5.7.3.2';

/** The facts about a verified peer certificate this check needs (a subset of `tls.PeerCertificate`). */
export interface PeerCertificateFacts {
  readonly raw?: Uint8Array | undefined;
  readonly ca?: boolean | undefined;
  readonly ext_key_usage?: readonly string[] | undefined;
}

/** Why a client certificate is refused after the handshake. */
export type ClientCertificateProblem = 'missing' | 'malformed' | 'ca-certificate' | 'key-cert-sign' | 'no-client-auth-eku';

/**
 * Second look at the AS client certificate once OpenSSL has verified its chain to the AS CA.
 * OpenSSL accepts a CA certificate as a client leaf, so this refuses a leaf that is a CA
 * (basicConstraints CA:TRUE) or may sign certificates (keyUsage keyCertSign), and one that does
 * not name the clientAuth purpose explicitly (without an EKU extension a certificate is "any
 * purpose" to OpenSSL, and the AS CA never issues one). Returns the reason to refuse, or
 * undefined when the leaf is acceptable.
 */
export function clientCertificateProblem(cert: PeerCertificateFacts | undefined | null): ClientCertificateProblem | undefined {
  if (!cert || !cert.raw || cert.raw.length === 0) return 'missing';
  if (cert.ca === true) return 'ca-certificate';
  const keyCertSign = hasKeyCertSign(cert.raw);
  if (keyCertSign === undefined) return 'malformed';
  if (keyCertSign) return 'key-cert-sign';
  if (!Array.isArray(cert.ext_key_usage) || !cert.ext_key_usage.includes(CLIENT_AUTH_EKU)) return 'no-client-auth-eku';
  return undefined;
}

interface Tlv {
  readonly tag: number;
  readonly start: number;
  readonly end: number;
}

const SEQUENCE = 0x30;
const EXTENSIONS = 0xa3; // [3] EXPLICIT in TBSCertificate
const OID = 0x06;
const OCTET_STRING = 0x04;
const BIT_STRING = 0x03;
const KEY_USAGE_OID = [0x55, 0x1d, 0x0f]; // 2.5.29.15
const KEY_CERT_SIGN = 0x04; // bit 5 of the first KeyUsage byte (RFC 5280 section 4.2.1.3)

/** One DER TLV at `offset`, refusing lengths that run past `limit`. */
function tlvAt(der: Uint8Array, offset: number, limit: number): Tlv | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset];
  let len = der[offset + 1];
  let p = offset + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 3 || p + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + der[p++];
  }
  if (p + len > limit) return undefined;
  return { tag, start: p, end: p + len };
}

function childrenOf(der: Uint8Array, parent: Tlv): Tlv[] | undefined {
  const out: Tlv[] = [];
  for (let p = parent.start; p < parent.end;) {
    const t = tlvAt(der, p, parent.end);
    if (!t) return undefined;
    out.push(t);
    p = t.end;
  }
  return out;
}

/**
 * Whether a DER certificate's keyUsage extension asserts keyCertSign (false when it has no
 * keyUsage), or undefined when the structure cannot be walked. node's `PeerCertificate` does not
 * expose key usage, so the few TLVs on the way are read here; OpenSSL has already parsed and
 * verified the certificate, so this only needs to find the extension, not to validate DER.
 */
export function hasKeyCertSign(der: Uint8Array): boolean | undefined {
  const cert = tlvAt(der, 0, der.length);
  if (!cert || cert.tag !== SEQUENCE) return undefined;
  const tbs = childrenOf(der, cert)?.[0];
  if (!tbs || tbs.tag !== SEQUENCE) return undefined;
  const fields = childrenOf(der, tbs);
  if (!fields) return undefined;
  const wrapper = fields.find(f => f.tag === EXTENSIONS);
  if (!wrapper) return false;
  const list = childrenOf(der, wrapper)?.[0];
  const extensions = list && list.tag === SEQUENCE ? childrenOf(der, list) : undefined;
  if (!extensions) return undefined;
  for (const ext of extensions) {
    const parts = childrenOf(der, ext);
    if (!parts || parts.length < 2) return undefined;
    const oid = parts[0];
    if (oid.tag !== OID || oid.end - oid.start !== KEY_USAGE_OID.length) continue;
    if (!KEY_USAGE_OID.every((b, i) => der[oid.start + i] === b)) continue;
    const value = parts[parts.length - 1];
    if (value.tag !== OCTET_STRING) return undefined;
    const bits = tlvAt(der, value.start, value.end);
    if (!bits || bits.tag !== BIT_STRING || bits.end - bits.start < 1) return undefined;
    // The first content byte counts unused bits; the flags start after it.
    return bits.end - bits.start >= 2 && (der[bits.start + 1] & KEY_CERT_SIGN) !== 0;
  }
  return false;
}
