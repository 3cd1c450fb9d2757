import { createPublicKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createVerifier, httpbis } from 'http-message-signatures';
import { createSelfSignedCa, issueCertificate } from '@aese/pki';
import type { T8Client } from './t8-client.ts';

/**
 * The TLS material of an AS's notification receiver on 127.0.0.1: a CA of its own (not the
 * SCEF's), written to `<dir>/receiver-ca.pem` for the edge's NOTIFICATION_CA_FILE, and the
 * receiver's server certificate.
 */
export async function receiverTls(dir: string): Promise<{ caFile: string; certPem: string; keyPem: string }> {
  const ca = await createSelfSignedCa('AS receiver CA');
  const cert = await issueCertificate(ca, { subject: 'CN=localhost', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], extendedKeyUsages: ['serverAuth'] });
  const caFile = join(dir, 'receiver-ca.pem');
  writeFileSync(caFile, ca.certPem);
  return { caFile, certPem: cert.certPem, keyPem: cert.keyPem };
}

/**
 * Verifies a received notification's RFC 9421 signature as an AS does: with the independent
 * library and the SCEF's published JWKS, over the notification profile's components.
 */
export async function verifyNotificationSignature(client: T8Client, received: { url: string; headers: Record<string, string | string[]> }): Promise<boolean> {
  const keys = await client.publishedKeys(true);
  const ok = await httpbis.verifyMessage(
    {
      keyLookup: async params => {
        const jwk = keys.find(k => k.kid === params.keyid);
        return jwk ? { id: jwk.kid!, algs: ['ecdsa-p256-sha256'], verify: createVerifier(createPublicKey({ key: jwk as never, format: 'jwk' }), 'ecdsa-p256-sha256') } : null;
      },
      requiredFields: ['@method', '@target-uri', 'content-digest', 'content-type'],
      requiredParams: ['created', 'nonce', 'keyid'],
    },
    { method: 'POST', url: received.url, headers: received.headers },
  );
  return ok === true;
}
