// The onboarding bundle the operator hands over (`aese as onboard ... --out <dir>`), and the
// keys and TLS settings made from it.
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { calculateJwkThumbprint, importJWK } from 'jose';

/** RFC 9421 algorithm names of the JOSE keys the T8 profile allows. */
export function httpSigAlgOf(jwk) {
  if (jwk.kty === 'EC' && jwk.crv === 'P-256') return 'ecdsa-p256-sha256';
  if (jwk.kty === 'OKP' && jwk.crv === 'Ed25519') return 'ed25519';
  throw new Error(`key ${jwk.kid ?? ''} is neither EC P-256 nor Ed25519`);
}

function publicPart(jwk) {
  const { d: _d, ...pub } = jwk;
  return pub;
}

/**
 * Reads client.crt, client.key, ca.crt, signing.jwk, encryption.jwk and as.json. The request
 * signature's `keyid` is the RFC 7638 thumbprint of the public signing key: computed here and
 * checked against the `kid` the operator wrote, so a mixed-up bundle fails at once.
 */
export async function loadBundle(dir) {
  const read = name => readFileSync(join(dir, name), 'utf8');
  const config = JSON.parse(read('as.json'));
  const signingJwk = JSON.parse(read('signing.jwk'));
  const encryptionJwk = JSON.parse(read('encryption.jwk'));
  const keyid = await calculateJwkThumbprint(publicPart(signingJwk), 'sha256');
  if (signingJwk.kid !== undefined && signingJwk.kid !== keyid) {
    throw new Error(`signing.jwk: kid ${signingJwk.kid} is not the RFC 7638 thumbprint of the key (${keyid})`);
  }
  const certPem = read('client.crt');
  // spiffe://<trust-domain>/as/<scsAsId>: the trust domain names the SCEF's own identities too.
  const uri = /URI:spiffe:\/\/([^/,\s]+)\/as\/([^,\s]+)/.exec(new X509Certificate(certPem).subjectAltName ?? '');
  if (!uri) throw new Error('client.crt has no spiffe://<trust-domain>/as/<scsAsId> URI SAN');
  return {
    dir,
    scsAsId: config.scsAsId,
    edgeUrl: config.edgeUrl.replace(/\/+$/, ''),
    scopes: config.scopes,
    trustDomain: uri[1],
    tls: { cert: certPem, key: read('client.key'), ca: read('ca.crt') },
    signing: {
      keyid,
      alg: httpSigAlgOf(signingJwk),
      privateKey: createPrivateKey({ key: signingJwk, format: 'jwk' }),
    },
    // ECDH-ES+A256KW on P-256: the key the SCEF encrypts responses and notifications to.
    decryptionKey: await importJWK(encryptionJwk, 'ECDH-ES+A256KW'),
    encryptionKeyId: encryptionJwk.kid,
  };
}
