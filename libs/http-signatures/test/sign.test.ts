import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { createNonce, signMessage, verifyMessageSignature } from '../src/index.js';
import type { SignMessageOptions } from '../src/index.js';
import { asKey, edgeOptions, keyStoreOf, NOW, T8_REQUEST_COMPONENTS, t8Request, withHeaders } from './t8-fixtures.js';

const AS = asKey('as-1-sign-key', 'ed25519');

function options(overrides: Partial<SignMessageOptions> = {}): SignMessageOptions {
  return {
    label: 'sig1',
    components: T8_REQUEST_COMPONENTS,
    params: { created: NOW, nonce: createNonce(), keyid: AS.kid },
    key: AS.privateKey,
    alg: AS.alg,
    ...overrides,
  };
}

describe('http-signatures: signing', () => {
  it('signs what the edge verifies, with the parameters in the given order', async () => {
    const { message } = t8Request();
    const nonce = 'bm9uY2Utb2YtMTI4LWJpdHM';
    const out = signMessage(message, options({ params: { created: NOW, keyid: AS.kid, nonce, alg: 'ed25519' } }));
    expect(out.signatureInput).to.equal(
      'sig1=("@method" "@target-uri" "authorization" "content-digest" "content-type");' + `created=${NOW};keyid="${AS.kid}";nonce="${nonce}";alg="ed25519"`,
    );
    const signed = withHeaders(message, { 'signature-input': out.signatureInput, signature: out.signature });
    expect(await verifyMessageSignature(signed, edgeOptions(keyStoreOf(AS).resolveKey))).to.include({ nonce });
  });

  it('treats every signing mistake as a programming error (TypeError), never as a 401', () => {
    const { message } = t8Request();
    expect(() => signMessage(message, options())).to.not.throw();
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const mistakes: [string, Partial<SignMessageOptions>][] = [
      ['a label that is not an sf-key', { label: 'Sig 1' }],
      ['a key of another algorithm', { key: p256.privateKey }],
      ['a public key', { key: AS.publicKey }],
      ['an algorithm outside the profile', { alg: 'rsa-pss-sha512' }],
      ['params.alg differing from alg', { params: { created: NOW, keyid: AS.kid, alg: 'ecdsa-p256-sha256' } }],
      ['a fractional created', { params: { created: NOW + 0.5, keyid: AS.kid } }],
      ['a non-ASCII nonce', { params: { created: NOW, keyid: AS.kid, nonce: 'né' } }],
      ['an unknown parameter', { params: { created: NOW, keyid: AS.kid, extra: 'x' } as never }],
      ['a duplicate component', { components: ['@method', '@method'] }],
      ['an unsupported component parameter', { components: ['authorization;bs'] }],
      ['a covered header the message lacks', { components: ['x-missing'] }],
      ['@status on a request', { components: ['@status'] }],
      [';req without a request', { components: ['@method;req'] }],
    ];
    for (const [what, overrides] of mistakes) {
      expect(() => signMessage(message, options(overrides)), what).to.throw(TypeError);
    }
  });

  it('createNonce returns 128 random bits as base64url', () => {
    const nonces = new Set(Array.from({ length: 64 }, createNonce));
    expect(nonces.size).to.equal(64);
    for (const nonce of nonces) {
      expect(nonce).to.match(/^[A-Za-z0-9_-]{22}$/);
      expect(Buffer.from(nonce, 'base64url')).to.have.length(16);
    }
  });
});
