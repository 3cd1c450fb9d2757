/**
 * The edge verifies with verifyMessageSignatureSync (its AS keys are in memory). It must accept
 * and refuse exactly what verifyMessageSignature does, for the same reasons, and consult the key
 * only where the asynchronous one does.
 */
import { expect } from 'chai';
import { SignatureError, verifyMessageSignature, verifyMessageSignatureSync } from '../src/index.js';
import type { HttpMessageView, ResolvedKey, SignatureErrorReason, VerifiedSignature } from '../src/index.js';
import { asKey, edgeOptions, keyStoreOf, NOW, signAsRequest, t8Request, withHeaders } from './t8-fixtures.js';

const AS1 = asKey('as-1-request-key', 'ecdsa-p256-sha256');
const OTHER = asKey('other-key', 'ecdsa-p256-sha256');

type Outcome = { verified: VerifiedSignature; lookups: string[] } | { reason: SignatureErrorReason; lookups: string[] };

function syncKeys(): { resolveKey: (keyid: string) => ResolvedKey | undefined; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    resolveKey: keyid => {
      calls.push(keyid);
      return keyid === AS1.kid ? { alg: AS1.alg, key: AS1.publicKey } : undefined;
    },
  };
}

async function outcomeAsync(message: HttpMessageView): Promise<Outcome> {
  const store = keyStoreOf(AS1);
  try {
    return { verified: await verifyMessageSignature(message, edgeOptions(store.resolveKey)), lookups: store.calls };
  } catch (err) {
    expect(err).to.be.instanceOf(SignatureError);
    return { reason: (err as SignatureError).reason, lookups: store.calls };
  }
}

function outcomeSync(message: HttpMessageView): Outcome {
  const store = syncKeys();
  const options = { ...edgeOptions(keyStoreOf().resolveKey), resolveKey: store.resolveKey };
  try {
    return { verified: verifyMessageSignatureSync(message, options), lookups: store.calls };
  } catch (err) {
    expect(err).to.be.instanceOf(SignatureError);
    return { reason: (err as SignatureError).reason, lookups: store.calls };
  }
}

describe('http-signatures: verifyMessageSignatureSync agrees with verifyMessageSignature', () => {
  const { message } = t8Request();
  const signed = signAsRequest(message, AS1);
  const cases: [string, HttpMessageView, 'verified' | SignatureErrorReason][] = [
    ['the untouched request (positive control)', signed, 'verified'],
    ['a changed method', { ...signed, method: 'PUT' }, 'SIGNATURE_INVALID'],
    ['another AS path', { ...signed, targetUri: signed.targetUri!.replace('/as-1/', '/as-2/') }, 'SIGNATURE_INVALID'],
    ['a keyid of nobody this AS registered', signAsRequest(message, OTHER), 'UNKNOWN_KEY'],
    ['no Signature-Input', withHeaders(signed, { 'signature-input': undefined }), 'SIGNATURE_MISSING'],
    ['a malformed Signature', withHeaders(signed, { signature: 'sig1=:not base64' }), 'SIGNATURE_MALFORMED'],
    ['a signature too old', signAsRequest(message, AS1, { params: { created: NOW - 3600 } }), 'CREATED_TOO_OLD'],
    ['a signature from the future', signAsRequest(message, AS1, { params: { created: NOW + 3600 } }), 'CREATED_IN_FUTURE'],
    ['a weak nonce', signAsRequest(message, AS1, { params: { nonce: 'short' } }), 'NONCE_INVALID'],
    ['the body components left out', signAsRequest(message, AS1, { components: ['@method', '@target-uri', 'authorization'] }), 'COMPONENT_MISSING'],
  ];
  for (const [what, view, expected] of cases) {
    it(`${what}: ${expected}, with the same key lookups`, async () => {
      const a = await outcomeAsync(view);
      const s = outcomeSync(view);
      if (expected === 'verified') {
        expect('verified' in s && s.verified, 'the sync verifier accepts').to.not.equal(false);
        expect(s).to.deep.equal(a);
        return;
      }
      expect('reason' in s ? s.reason : 'accepted').to.equal(expected);
      expect(s).to.deep.equal(a);
    });
  }
});

describe('http-signatures: a view whose field names are all lower case (lowerCaseNames)', () => {
  const { message } = t8Request();
  const signed = signAsRequest(message, AS1);
  const lowered = (view: HttpMessageView): HttpMessageView => ({
    ...view,
    headers: Object.fromEntries(Object.entries(view.headers).map(([k, v]) => [k.toLowerCase(), v])),
    lowerCaseNames: true,
  });

  it('verifies as the same view without the flag, and the same tampering is refused', async () => {
    const plain = await outcomeAsync(signed);
    expect('verified' in plain, 'the positive control verifies').to.equal(true);
    expect(await outcomeAsync(lowered(signed))).to.deep.equal(plain);
    expect(outcomeSync(lowered({ ...signed, method: 'PUT' }))).to.deep.include({ reason: 'SIGNATURE_INVALID' });
  });

  it('takes the flag at its word: a field under a name not in lower case is not found', async () => {
    const view = { ...lowered(signed), headers: { ...lowered(signed).headers, 'Signature-Input': lowered(signed).headers['signature-input'], 'signature-input': undefined } };
    expect(await outcomeAsync(view)).to.deep.include({ reason: 'SIGNATURE_MISSING' });
    expect(await outcomeAsync({ ...view, lowerCaseNames: false }), 'found by the scan without the flag').to.have.property('verified');
  });
});

describe('http-signatures: a malformed required component (the caller’s mistake)', () => {
  it('is reported before anything in the message is read, by both verifiers', async () => {
    const { message } = t8Request();
    const unsigned = withHeaders(message, { 'signature-input': undefined, signature: undefined });
    const options = { ...edgeOptions(keyStoreOf(AS1).resolveKey), requiredComponents: ['@method', '"unterminated'] };
    const asyncErr = await verifyMessageSignature(unsigned, options).then(
      () => undefined,
      (e: unknown) => e,
    );
    let syncErr: unknown;
    try {
      verifyMessageSignatureSync(unsigned, { ...options, resolveKey: () => undefined });
    } catch (e) {
      syncErr = e;
    }
    expect(asyncErr, 'not the missing signature').to.not.have.property('reason', 'SIGNATURE_MISSING');
    expect(asyncErr).to.be.instanceOf(Error);
    expect(syncErr).to.deep.equal(asyncErr);
    // The positive control: with valid specs the same message is refused for its missing signature.
    expect(await outcomeAsync(unsigned)).to.deep.include({ reason: 'SIGNATURE_MISSING' });
  });
});
