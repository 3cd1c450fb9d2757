// A receiver CA and a server certificate for a notification receiver on a laptop, made with
// @peculiar/x509 over node's WebCrypto. The SCEF operator points NOTIFICATION_CA_FILE at the
// CA; a deployed receiver uses a certificate from a public CA instead.
import 'reflect-metadata';
import { randomBytes, webcrypto } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' };
const DAY_MS = 86_400_000;

const serial = () => {
  const b = randomBytes(16);
  b[0] &= 0x7f;
  return b.toString('hex');
};

async function pkcs8Pem(key) {
  const der = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', key));
  return `-----BEGIN PRIVATE KEY-----\n${der
    .toString('base64')
    .match(/.{1,64}/g)
    .join('\n')}\n-----END PRIVATE KEY-----\n`;
}

/**
 * Writes ca.crt, server.crt and server.key into `dir` (created 0700; nothing is overwritten).
 * The CA's private key is never written: it signs the one server certificate and is gone, so
 * nothing else can ever chain to a CA the SCEF trusts.
 */
export async function createReceiverCertificate(dir, hosts) {
  const files = ['ca.crt', 'server.crt', 'server.key'].map(f => join(dir, f));
  for (const f of files) if (existsSync(f)) throw new Error(`${f} exists; choose an empty folder`);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const now = Date.now();
  const caKeys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=Example AS notification receiver CA',
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 365 * DAY_MS),
    keys: caKeys,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const names = hosts.map(h => ({ type: isIP(h) ? 'ip' : 'dns', value: h }));
  const server = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${hosts[0]}`,
    issuer: ca.subject,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 90 * DAY_MS),
    publicKey: keys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: ALG,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(names),
      await x509.AuthorityKeyIdentifierExtension.create(ca),
    ],
  });
  writeFileSync(files[0], ca.toString('pem') + '\n', { mode: 0o644, flag: 'wx' });
  writeFileSync(files[1], server.toString('pem') + '\n', { mode: 0o644, flag: 'wx' });
  writeFileSync(files[2], await pkcs8Pem(keys.privateKey), { mode: 0o600, flag: 'wx' });
  chmodSync(files[2], 0o600);
  return files;
}
