import { createPrivateKey, KeyObject, randomBytes, X509Certificate as NodeX509Certificate } from 'node:crypto';
import type { webcrypto } from 'node:crypto';
import { isIP } from 'node:net';
import { derToPem } from './pem.js';
import { nodeCrypto, x509 } from './x509.js';

/** A certificate and its private key, both PEM; the key is PKCS#8 (`BEGIN PRIVATE KEY`). */
export interface KeyPairPem {
  readonly certPem: string;
  readonly keyPem: string;
}

/** Extended key usages this PKI issues: mesh services are both, ASes only clients, T8 only server. */
export type ExtendedKeyUsageName = 'serverAuth' | 'clientAuth';

/**
 * Key usage bits a profile may ask for. Normal profiles never set this (leaves get
 * `digitalSignature`, CAs `keyCertSign` + `cRLSign`); it exists so tests can build the malformed
 * certificates a TLS peer must refuse, such as a leaf that claims `keyCertSign`.
 */
export type KeyUsageName = 'digitalSignature' | 'keyEncipherment' | 'keyAgreement' | 'keyCertSign' | 'cRLSign';

/** What one issued certificate says. Every field but `subject` has a safe default. */
export interface CertificateProfile {
  /** Distinguished name, e.g. `CN=authentication`. Identity is carried by the SANs, not here. */
  readonly subject: string;
  /** URI SANs, e.g. a SPIFFE ID from `spiffeId()`; printable ASCII, not otherwise validated. */
  readonly uriSans?: readonly string[];
  /** DNS SANs, checked against the TLS server name by clients. */
  readonly dnsNames?: readonly string[];
  /** IPv4 or IPv6 SANs. */
  readonly ipAddresses?: readonly string[];
  /** Omitted means no EKU extension, which TLS stacks read as "any purpose": name them. */
  readonly extendedKeyUsages?: readonly ExtendedKeyUsageName[];
  /** basicConstraints CA:TRUE (critical, pathLength 0 unless given) and keyCertSign + cRLSign. */
  readonly isCa?: boolean;
  /** pathLenConstraint for a CA; ignored for leaves. Default 0: these CAs sign only leaves. */
  readonly pathLength?: number;
  /** Override of the key usage bits; see {@link KeyUsageName}. */
  readonly keyUsages?: readonly KeyUsageName[];
  /** Default: 5 minutes ago, to absorb clock skew between hosts. */
  readonly notBefore?: Date;
  /** Default: now + `validityDays`. A date in the past produces an expired certificate. */
  readonly notAfter?: Date;
  /** Default {@link DEFAULT_LEAF_VALIDITY_DAYS} for leaves, {@link DEFAULT_CA_VALIDITY_DAYS} for CAs. */
  readonly validityDays?: number;
}

/** Default lifetime of a CA certificate (ten years): the CAs are rotated by re-running init. */
export const DEFAULT_CA_VALIDITY_DAYS = 3650;

/** Default lifetime of a leaf certificate (one year). */
export const DEFAULT_LEAF_VALIDITY_DAYS = 365;

const CLOCK_SKEW_MS = 5 * 60 * 1000;
const DAY_MS = 24 * 60 * 60 * 1000;
const EC_KEY_ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING_ALGORITHM = { name: 'ECDSA', hash: 'SHA-256' } as const;
const PRINTABLE_ASCII_RE = /^[\x20-\x7e]+$/;
const DNS_NAME_RE = /^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

const KEY_USAGE_FLAGS: Readonly<Record<KeyUsageName, number>> = {
  digitalSignature: x509.KeyUsageFlags.digitalSignature,
  keyEncipherment: x509.KeyUsageFlags.keyEncipherment,
  keyAgreement: x509.KeyUsageFlags.keyAgreement,
  keyCertSign: x509.KeyUsageFlags.keyCertSign,
  cRLSign: x509.KeyUsageFlags.cRLSign,
};

const EKU_OIDS: Readonly<Record<ExtendedKeyUsageName, string>> = {
  serverAuth: x509.ExtendedKeyUsage.serverAuth,
  clientAuth: x509.ExtendedKeyUsage.clientAuth,
};

/** An ECDSA P-256 key pair from node's WebCrypto, extractable so the private key can be saved. */
async function generateKeyPair(): Promise<webcrypto.CryptoKeyPair> {
  return nodeCrypto.subtle.generateKey(EC_KEY_ALGORITHM, true, ['sign', 'verify']);
}

function privateKeyToPem(key: webcrypto.CryptoKey): string {
  return KeyObject.from(key).export({ type: 'pkcs8', format: 'pem' }) as string;
}

/**
 * A random positive 16-byte serial. The top bit is cleared (positive INTEGER) and the next one
 * set, so the DER encoding is always exactly 16 bytes with no leading zero; 126 random bits is
 * well above the 64 the CA/Browser Forum asks for.
 */
function randomSerialNumber(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] & 0x7f) | 0x40;
  return bytes.toString('hex');
}

function validityWindow(profile: Pick<CertificateProfile, 'notBefore' | 'notAfter' | 'validityDays'>, defaultDays: number): { notBefore: Date; notAfter: Date } {
  const days = profile.validityDays ?? defaultDays;
  if (!Number.isFinite(days) || days <= 0) throw new TypeError(`validityDays must be a positive number, got ${days}`);
  const now = Date.now();
  let notBefore = profile.notBefore ?? new Date(now - CLOCK_SKEW_MS);
  const notAfter = profile.notAfter ?? new Date(Math.max(now, notBefore.getTime()) + days * DAY_MS);
  if (!profile.notBefore && notAfter.getTime() <= notBefore.getTime()) {
    // An explicitly expired certificate: start its validity `days` before it ends.
    notBefore = new Date(notAfter.getTime() - days * DAY_MS);
  }
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) throw new TypeError('invalid validity date');
  if (notAfter.getTime() <= notBefore.getTime()) {
    throw new TypeError(`notAfter (${notAfter.toISOString()}) must be after notBefore (${notBefore.toISOString()})`);
  }
  return { notBefore, notAfter };
}

function subjectAltNames(profile: CertificateProfile): x509.JsonGeneralName[] {
  const names: x509.JsonGeneralName[] = [];
  for (const uri of profile.uriSans ?? []) {
    if (typeof uri !== 'string' || !PRINTABLE_ASCII_RE.test(uri)) throw new TypeError(`invalid URI SAN ${JSON.stringify(uri)}`);
    names.push({ type: 'url', value: uri });
  }
  for (const dns of profile.dnsNames ?? []) {
    if (typeof dns !== 'string' || dns.length > 253 || !DNS_NAME_RE.test(dns)) throw new TypeError(`invalid DNS SAN ${JSON.stringify(dns)}`);
    names.push({ type: 'dns', value: dns });
  }
  for (const ip of profile.ipAddresses ?? []) {
    if (typeof ip !== 'string' || isIP(ip) === 0) throw new TypeError(`invalid IP SAN ${JSON.stringify(ip)}`);
    names.push({ type: 'ip', value: ip });
  }
  return names;
}

function keyUsageFlags(names: readonly KeyUsageName[]): number {
  let flags = 0;
  for (const name of names) {
    const flag = KEY_USAGE_FLAGS[name];
    if (flag === undefined) throw new TypeError(`unknown key usage ${JSON.stringify(name)}`);
    flags |= flag;
  }
  return flags;
}

/** The extensions every profile shares: constraints, key usage, EKU, SANs, subject key id. */
async function profileExtensions(profile: CertificateProfile, publicKey: webcrypto.CryptoKey): Promise<x509.Extension[]> {
  const isCa = profile.isCa === true;
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(isCa, isCa ? (profile.pathLength ?? 0) : undefined, true),
    new x509.KeyUsagesExtension(keyUsageFlags(profile.keyUsages ?? (isCa ? ['keyCertSign', 'cRLSign'] : ['digitalSignature'])), true),
  ];
  if (profile.extendedKeyUsages && profile.extendedKeyUsages.length > 0) {
    const oids = profile.extendedKeyUsages.map(name => {
      const oid = EKU_OIDS[name];
      if (!oid) throw new TypeError(`unknown extended key usage ${JSON.stringify(name)}`);
      return oid;
    });
    extensions.push(new x509.ExtendedKeyUsageExtension(oids, false));
  }
  const sans = subjectAltNames(profile);
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans, false));
  extensions.push(await x509.SubjectKeyIdentifierExtension.create(publicKey, false, nodeCrypto));
  return extensions;
}

/** A loaded issuer: its parsed certificate and a WebCrypto signing key. */
interface LoadedIssuer {
  readonly cert: x509.X509Certificate;
  readonly signingKey: webcrypto.CryptoKey;
}

/**
 * Loads an issuer and refuses one that cannot produce verifiable certificates: a key that is not
 * P-256, a key that does not match the certificate, or a certificate that is not a CA.
 */
async function loadIssuer(issuer: KeyPairPem): Promise<LoadedIssuer> {
  const keyObject = createPrivateKey(issuer.keyPem);
  if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new TypeError('issuer key must be an ECDSA P-256 private key');
  }
  const nodeCert = new NodeX509Certificate(issuer.certPem);
  if (!nodeCert.ca) throw new TypeError(`issuer ${nodeCert.subject} is not a CA certificate`);
  if (!nodeCert.checkPrivateKey(keyObject)) throw new TypeError(`issuer key does not match certificate ${nodeCert.subject}`);
  const pkcs8 = keyObject.export({ type: 'pkcs8', format: 'der' });
  const signingKey = await nodeCrypto.subtle.importKey('pkcs8', pkcs8, EC_KEY_ALGORITHM, false, ['sign']);
  return { cert: new x509.X509Certificate(nodeCert.raw), signingKey };
}

/**
 * Creates a self-signed ECDSA P-256 CA (basicConstraints CA:TRUE pathLength 0, keyCertSign and
 * cRLSign). The operator runs three of them (mesh, AS, T8 server) so that a certificate from one
 * trust relationship can never be accepted in another.
 */
export async function createSelfSignedCa(commonName: string, opts: { validityDays?: number; notBefore?: Date; notAfter?: Date } = {}): Promise<KeyPairPem> {
  if (typeof commonName !== 'string' || commonName.length === 0 || commonName.length > 64) {
    throw new TypeError('CA common name must be 1 to 64 characters');
  }
  const keys = await generateKeyPair();
  const { notBefore, notAfter } = validityWindow(opts, DEFAULT_CA_VALIDITY_DAYS);
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: [{ CN: [commonName] }],
      keys,
      serialNumber: randomSerialNumber(),
      notBefore,
      notAfter,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: await profileExtensions({ subject: '', isCa: true }, keys.publicKey),
    },
    nodeCrypto,
  );
  return { certPem: derToPem(new Uint8Array(cert.rawData), 'CERTIFICATE'), keyPem: privateKeyToPem(keys.privateKey) };
}

/**
 * Issues a certificate for a fresh ECDSA P-256 key, signed with SHA-256 by `issuer`. Leaves get
 * basicConstraints CA:FALSE and the digitalSignature key usage (all that ECDHE TLS needs), both
 * critical, plus subject and authority key identifiers so chains build without name matching.
 *
 * @throws TypeError when the profile or the issuer is malformed.
 */
export async function issueCertificate(issuer: KeyPairPem, profile: CertificateProfile): Promise<KeyPairPem> {
  if (typeof profile?.subject !== 'string' || profile.subject.length === 0) throw new TypeError('profile.subject is required');
  const { cert: issuerCert, signingKey } = await loadIssuer(issuer);
  const keys = await generateKeyPair();
  const { notBefore, notAfter } = validityWindow(profile, profile.isCa ? DEFAULT_CA_VALIDITY_DAYS : DEFAULT_LEAF_VALIDITY_DAYS);
  const extensions = await profileExtensions(profile, keys.publicKey);
  const issuerKeyId = issuerCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  extensions.push(
    issuerKeyId ? new x509.AuthorityKeyIdentifierExtension(issuerKeyId, false) : await x509.AuthorityKeyIdentifierExtension.create(issuerCert.publicKey, false, nodeCrypto),
  );
  const cert = await x509.X509CertificateGenerator.create(
    {
      subject: profile.subject,
      issuer: issuerCert.subjectName,
      publicKey: keys.publicKey,
      signingKey,
      serialNumber: randomSerialNumber(),
      notBefore,
      notAfter,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions,
    },
    nodeCrypto,
  );
  return { certPem: derToPem(new Uint8Array(cert.rawData), 'CERTIFICATE'), keyPem: privateKeyToPem(keys.privateKey) };
}

/** One entry of a CRL: the serial as hex (as `X509Certificate.serialNumber` prints it). */
export interface RevokedCertificate {
  readonly serialNumber: string;
  readonly revokedAt?: Date;
}

/**
 * Issues a CRL signed by `issuer`, for the `crl` option of `tls.createSecureContext`. Revocation
 * in the running system travels over NATS; a CRL is the standard form of the same list, for TLS
 * stacks and tests that check revocation during the handshake.
 */
export async function issueCrl(issuer: KeyPairPem, revoked: readonly RevokedCertificate[], opts: { thisUpdate?: Date; nextUpdate?: Date } = {}): Promise<string> {
  const { cert: issuerCert, signingKey } = await loadIssuer(issuer);
  const thisUpdate = opts.thisUpdate ?? new Date(Date.now() - CLOCK_SKEW_MS);
  const nextUpdate = opts.nextUpdate ?? new Date(thisUpdate.getTime() + 7 * DAY_MS);
  const entries = revoked.map(r => {
    if (!/^[0-9a-fA-F]+$/.test(r.serialNumber)) throw new TypeError(`invalid serial number ${JSON.stringify(r.serialNumber)}`);
    return { serialNumber: r.serialNumber.toLowerCase(), revocationDate: r.revokedAt ?? thisUpdate };
  });
  const issuerKeyId = issuerCert.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  const crl = await x509.X509CrlGenerator.create(
    {
      issuer: issuerCert.subjectName,
      thisUpdate,
      nextUpdate,
      entries,
      signingKey,
      signingAlgorithm: SIGNING_ALGORITHM,
      extensions: issuerKeyId ? [new x509.AuthorityKeyIdentifierExtension(issuerKeyId, false)] : [],
    },
    nodeCrypto,
  );
  return derToPem(new Uint8Array(crl.rawData), 'X509 CRL');
}
