import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

const PEM_BLOCK_RE = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END \1-----/;

/**
 * Decodes the first PEM block (certificate, key or CRL) to DER. Thumbprints and signatures are
 * defined over DER, never over the PEM text, so this is the step before hashing.
 *
 * @throws TypeError when the text holds no PEM block.
 */
export function pemToDer(pem: string): Buffer {
  const match = typeof pem === 'string' ? PEM_BLOCK_RE.exec(pem) : null;
  if (!match) throw new TypeError('not a PEM document: no -----BEGIN ...----- block found');
  const der = Buffer.from(match[2].replace(/\s+/g, ''), 'base64');
  if (der.length === 0) throw new TypeError(`empty PEM block ${match[1]}`);
  return der;
}

/** Encodes DER as a PEM block with 64-character lines and a trailing newline. */
export function derToPem(der: Uint8Array, label: string): string {
  const b64 = Buffer.from(der).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/**
 * The RFC 8705 `x5t#S256` thumbprint of a certificate: base64url (no padding) of the SHA-256 of
 * its DER. Access tokens are bound to the client certificate by this value, and the AS registry
 * stores it at onboarding, so both sides must compute it the same way, from DER.
 */
export function certificateThumbprint(der: Buffer | Uint8Array): string {
  return createHash('sha256').update(der).digest('base64url');
}

/**
 * Reads a PEM file and checks that it is PEM, so a wrong path or an empty file fails at start-up
 * with the path in the message rather than later as an obscure TLS error.
 *
 * @throws Error naming the path when the file is missing or is not PEM.
 */
export function readPem(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err: unknown) {
    throw new Error(`cannot read PEM file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!PEM_BLOCK_RE.test(text)) throw new Error(`${path} is not a PEM file`);
  return text;
}
