/**
 * What the edge must refuse in an AS's request signature. Every test first verifies the untouched
 * message (the positive control), then the altered one, and checks whether the key store was
 * consulted: refusals that need no key must come before any key lookup or cryptography.
 */
import { createSecretKey, generateKeyPairSync, sign as nodeSign } from 'node:crypto';
import { AeseError } from '@aese/errors';
import { expect } from 'chai';
import { createSigner, httpbis } from 'http-message-signatures';
import {
  computeContentDigest,
  ContentDigestError,
  createNonce,
  createSignatureBase,
  isAcceptableNonce,
  NONCE_MAX_CHARS,
  NONCE_MIN_BYTES,
  SignatureError,
  signMessage,
  verifyContentDigest,
  verifyMessageSignature,
} from '../src/index.js';
import type { HttpMessageView, SignatureErrorReason, VerifyMessageSignatureOptions } from '../src/index.js';
import { asKey, edgeOptions, keyStoreOf, NOW, signAsRequest, T8_REQUEST_COMPONENTS, t8Request, withHeaders } from './t8-fixtures.js';

const AS1 = asKey('as-1-request-key', 'ecdsa-p256-sha256');
const AS2 = asKey('as-2-request-key', 'ed25519');

async function reasonOf(promise: Promise<unknown>): Promise<SignatureErrorReason> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(SignatureError);
    expect(err).to.be.instanceOf(AeseError).with.property('code', 'UNAUTHENTICATED');
    return (err as SignatureError).reason;
  }
  throw new Error('expected a SignatureError, the signature was accepted');
}

/** A request signed by AS1, the edge's options, and the AS1 key store's lookup log. */
function setup(overrides: Parameters<typeof signAsRequest>[2] = {}, extra: Partial<VerifyMessageSignatureOptions> = {}) {
  const { message, body } = t8Request();
  const signed = signAsRequest(message, AS1, overrides);
  const store = keyStoreOf(AS1);
  return { signed, body, store, options: edgeOptions(store.resolveKey, extra) };
}

function header(message: HttpMessageView, name: string): string {
  return message.headers[name] as string;
}

/** Replaces the signature bytes of sig1. */
function withSignatureBytes(message: HttpMessageView, bytes: Buffer): HttpMessageView {
  return withHeaders(message, { signature: `sig1=:${bytes.toString('base64')}:` });
}

function signatureBytes(message: HttpMessageView): Buffer {
  return Buffer.from(header(message, 'signature').slice('sig1=:'.length, -1), 'base64');
}

describe('http-signatures: refusals of AS request signatures', () => {
  describe('body and covered components', () => {
    it('a changed body keeps a valid signature but fails the covered Content-Digest', async () => {
      const { signed, body, options } = setup();
      await verifyMessageSignature(signed, options);
      expect(verifyContentDigest(header(signed, 'content-digest'), body).algorithms).to.deep.equal(['sha-256']);
      const changed = Buffer.from(body.toString().replace('LOSS_OF_CONNECTIVITY', 'UE_REACHABILITY'));
      expect(() => verifyContentDigest(header(signed, 'content-digest'), changed))
        .to.throw(ContentDigestError)
        .with.property('reason', 'DIGEST_MISMATCH');
    });

    const tamperings: [string, (m: HttpMessageView) => HttpMessageView][] = [
      ['@method', m => ({ ...m, method: 'PUT' })],
      ['@target-uri path', m => ({ ...m, targetUri: m.targetUri!.replace('/as-1/', '/as-2/') })],
      ['@target-uri query', m => ({ ...m, targetUri: m.targetUri!.replace('flag=1', 'flag=1&x=2') })],
      ['@target-uri query removed', m => ({ ...m, targetUri: m.targetUri!.replace('?flag=1', '') })],
      ['@target-uri scheme', m => ({ ...m, targetUri: m.targetUri!.replace('https:', 'http:') })],
      ['@target-uri host', m => ({ ...m, targetUri: m.targetUri!.replace('scef.example.net', 'evil.example.net') })],
      ['@target-uri port', m => ({ ...m, targetUri: m.targetUri!.replace(':8443', ':9443') })],
      ['authorization', m => withHeaders(m, { authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.e30.b3RoZXI' })],
      ['content-type', m => withHeaders(m, { 'content-type': 'application/merge-patch+json' })],
      ['content-digest', m => withHeaders(m, { 'content-digest': computeContentDigest(Buffer.from('{}')) })],
      ['content-digest algorithm', m => withHeaders(m, { 'content-digest': computeContentDigest(t8Request().body, 'sha-512') })],
    ];
    for (const [what, tamper] of tamperings) {
      it(`changing ${what} after signing fails the signature (SIGNATURE_INVALID)`, async () => {
        const { signed, store, options } = setup();
        await verifyMessageSignature(signed, options);
        expect(await reasonOf(verifyMessageSignature(tamper(signed), options))).to.equal('SIGNATURE_INVALID');
        expect(store.calls).to.have.length(2);
      });
    }

    it('@target-uri is the target as sent: another spelling of the same path fails the signature (SIGNATURE_INVALID)', async () => {
      const origin = 'https://scef.example.net:8443';
      const path = '/3gpp-monitoring-event/v1/as-1/subscriptions';
      const at = (target: string): HttpMessageView => ({ ...t8Request().message, targetUri: origin + target });
      const store = keyStoreOf(AS1);
      const options = edgeOptions(store.resolveKey);
      for (const [signedTarget, sentTarget] of [
        [path, '/3gpp-monitoring-event/v1/as-1/x/%2e%2e/subscriptions'],
        [path, '/3gpp-monitoring-event/v1/as-1/x/../subscriptions'],
        [path, '/3gpp-monitoring-event/v1/as-1/./subscriptions'],
        [path, '/3gpp-monitoring-event/v1//as-1/subscriptions'],
        [path, '/3gpp-monitoring-event/v1/as-1/%73ubscriptions'],
        [path, '/3gpp-monitoring-event/v1/as-1/Subscriptions'],
        ['/3gpp-monitoring-event/v1/as-1/%7e', '/3gpp-monitoring-event/v1/as-1/%7E'],
        [`${path}?a=%41`, `${path}?a=A`],
      ]) {
        const signed = signAsRequest(at(signedTarget), AS1);
        // Control: the spelling that was signed verifies, and its base carries it unchanged.
        await verifyMessageSignature(signed, options);
        const base = createSignatureBase(at(signedTarget), { components: ['@target-uri', '@path', '@request-target'], params: { created: NOW, keyid: AS1.kid } }).base;
        const [targetPath, query = ''] = signedTarget.split('?');
        expect(base.split('\n').slice(0, 3)).to.deep.equal([
          `"@target-uri": ${origin}${signedTarget}`,
          `"@path": ${targetPath}`,
          `"@request-target": ${targetPath}${query ? `?${query}` : ''}`,
        ]);
        const moved = { ...signed, targetUri: origin + sentTarget };
        expect(await reasonOf(verifyMessageSignature(moved, options)), sentTarget).to.equal('SIGNATURE_INVALID');
      }
    });

    it('an independent implementation signing a target with dot segments verifies only for that same raw target', async () => {
      const { message } = t8Request();
      const url = 'https://scef.example.net:8443/3gpp-monitoring-event/v1/as-1/x/%2e%2e/subscriptions';
      const theirs = await httpbis.signMessage(
        {
          key: createSigner(AS1.privateKey, AS1.alg, AS1.kid),
          name: 'sig1',
          fields: T8_REQUEST_COMPONENTS,
          params: ['created', 'nonce', 'keyid'],
          paramValues: { created: new Date(NOW * 1000), nonce: createNonce() },
        },
        { method: message.method!, url, headers: message.headers as Record<string, string> },
      );
      const options = edgeOptions(keyStoreOf(AS1).resolveKey);
      await verifyMessageSignature({ ...message, targetUri: url, headers: theirs.headers }, options);
      const normalised = { ...message, targetUri: new URL(url).href, headers: theirs.headers };
      expect(await reasonOf(verifyMessageSignature(normalised, options))).to.equal('SIGNATURE_INVALID');
    });

    it('changing @authority fails a signature that covers it', async () => {
      const { signed, options } = setup({ components: [...T8_REQUEST_COMPONENTS, '@authority'] });
      await verifyMessageSignature(signed, options);
      await verifyMessageSignature({ ...signed, authority: 'SCEF.example.net:8443' }, options);
      expect(await reasonOf(verifyMessageSignature({ ...signed, authority: 'scef.example.net:9443' }, options))).to.equal('SIGNATURE_INVALID');
      expect(await reasonOf(verifyMessageSignature({ ...signed, authority: 'other.example.net:8443' }, options))).to.equal('SIGNATURE_INVALID');
    });

    it('changing fields that are not covered keeps the signature valid', async () => {
      const { signed, options } = setup();
      await verifyMessageSignature(withHeaders(signed, { 'content-length': '999', 'x-trace': 'abc' }), options);
    });

    it('a covered field with a line break cannot be smuggled into the signature base (COMPONENT_INVALID)', async () => {
      const { signed, store, options } = setup();
      await verifyMessageSignature(signed, options);
      const injected = withHeaders(signed, { authorization: 'Bearer x\n"@method": GET' });
      expect(await reasonOf(verifyMessageSignature(injected, options))).to.equal('COMPONENT_INVALID');
      expect(store.calls).to.have.length(1);
    });
  });

  describe('required and present components', () => {
    it('a POST signature without content-digest is refused before any key lookup (COMPONENT_MISSING)', async () => {
      const control = setup();
      await verifyMessageSignature(control.signed, control.options);
      const { signed, store, options } = setup({ components: ['@method', '@target-uri', 'authorization', 'content-type'] });
      expect(await reasonOf(verifyMessageSignature(signed, options))).to.equal('COMPONENT_MISSING');
      expect(store.calls).to.deep.equal([]);
    });

    it('a signature without authorization is refused (COMPONENT_MISSING)', async () => {
      const { signed, store, options } = setup({ components: ['@method', '@target-uri', 'content-digest', 'content-type'] });
      await verifyMessageSignature(signed, { ...options, requiredComponents: ['@method', '@target-uri'] });
      expect(await reasonOf(verifyMessageSignature(signed, options))).to.equal('COMPONENT_MISSING');
      expect(store.calls).to.have.length(1);
    });

    it('a covered field that is absent from the message is refused (COMPONENT_NOT_PRESENT)', async () => {
      const { signed, store, options } = setup();
      await verifyMessageSignature(signed, options);
      const stripped = withHeaders(signed, { 'content-digest': undefined });
      expect(await reasonOf(verifyMessageSignature(stripped, options))).to.equal('COMPONENT_NOT_PRESENT');
      expect(store.calls).to.have.length(1);
    });

    const crafted: [string, string, SignatureErrorReason][] = [
      ['a duplicate component', '("@method" "@target-uri" "@method" "authorization" "content-digest" "content-type")', 'DUPLICATE_COMPONENT'],
      ['an unknown component parameter', '("@method" "@target-uri" "authorization";bs "content-digest" "content-type")', 'COMPONENT_UNSUPPORTED'],
      ['an unsupported ;sf', '("@method" "@target-uri" "authorization" "content-digest";sf "content-type")', 'COMPONENT_UNSUPPORTED'],
      ['a made-up parameter', '("@method";x=1 "@target-uri" "authorization" "content-digest" "content-type")', 'COMPONENT_UNSUPPORTED'],
      ['an unknown derived component', '("@method" "@target-uri" "@frobnicate" "authorization" "content-digest" "content-type")', 'COMPONENT_UNSUPPORTED'],
      ['an upper-case field name', '("@method" "@target-uri" "Authorization" "content-digest" "content-type")', 'SIGNATURE_MALFORMED'],
      ['a token instead of a string', '("@method" "@target-uri" authorization "content-digest" "content-type")', 'SIGNATURE_MALFORMED'],
      ['"@signature-params"', '("@method" "@target-uri" "authorization" "content-digest" "content-type" "@signature-params")', 'SIGNATURE_MALFORMED'],
      [';req on a request', '("@method" "@target-uri" "authorization" "content-digest" "content-type" "@path";req)', 'SIGNATURE_MALFORMED'],
    ];
    for (const [what, list, reason] of crafted) {
      it(`a covered component list with ${what} is refused before any key lookup (${reason})`, async () => {
        const { signed, store, options } = setup();
        await verifyMessageSignature(signed, options);
        const input = header(signed, 'signature-input').replace(/^sig1=\([^)]*\)/, `sig1=${list}`);
        expect(input).to.not.equal(header(signed, 'signature-input'));
        expect(await reasonOf(verifyMessageSignature(withHeaders(signed, { 'signature-input': input }), options))).to.equal(reason);
        expect(store.calls).to.have.length(1);
      });
    }
  });

  describe('signature bytes', () => {
    for (const as of [AS1, AS2]) {
      it(`${as.alg}: truncated, extended, bit-flipped and empty signatures are refused`, async () => {
        const { message } = t8Request();
        const signed = signAsRequest(message, as);
        const store = keyStoreOf(as);
        const options = edgeOptions(store.resolveKey);
        await verifyMessageSignature(signed, options);
        const bytes = signatureBytes(signed);
        expect(bytes).to.have.length(64);
        const variants = [bytes.subarray(0, 63), Buffer.concat([bytes, Buffer.from([0])])];
        for (const index of [0, 1, 31, 32, 63]) {
          for (const bit of [0x01, 0x80]) {
            const flipped = Buffer.from(bytes);
            flipped[index] ^= bit;
            variants.push(flipped);
          }
        }
        for (const variant of variants) {
          expect(await reasonOf(verifyMessageSignature(withSignatureBytes(signed, variant), options))).to.equal('SIGNATURE_INVALID');
        }
        expect(await reasonOf(verifyMessageSignature(withHeaders(signed, { signature: 'sig1=::' }), options))).to.equal('SIGNATURE_MALFORMED');
      });
    }

    it('ecdsa-p256-sha256: r = 0, s = 0 or both are refused', async () => {
      const { signed, options } = setup();
      await verifyMessageSignature(signed, options);
      const bytes = signatureBytes(signed);
      const zero = Buffer.alloc(32);
      for (const variant of [Buffer.alloc(64), Buffer.concat([zero, bytes.subarray(32)]), Buffer.concat([bytes.subarray(0, 32), zero])]) {
        expect(await reasonOf(verifyMessageSignature(withSignatureBytes(signed, variant), options))).to.equal('SIGNATURE_INVALID');
      }
    });

    it('ecdsa-p256-sha256: a DER-encoded signature over the right base is refused (raw r||s only)', async () => {
      const { message } = t8Request();
      const out = signMessage(message, {
        label: 'sig1',
        components: T8_REQUEST_COMPONENTS,
        params: { created: NOW, nonce: createNonce(), keyid: AS1.kid },
        key: AS1.privateKey,
        alg: AS1.alg,
      });
      const signed = withHeaders(message, { 'signature-input': out.signatureInput, signature: out.signature });
      const options = edgeOptions(keyStoreOf(AS1).resolveKey);
      await verifyMessageSignature(signed, options);
      const der = nodeSign('sha256', Buffer.from(out.signatureBase), { key: AS1.privateKey, dsaEncoding: 'der' });
      expect(await reasonOf(verifyMessageSignature(withSignatureBytes(signed, der), options))).to.equal('SIGNATURE_INVALID');
    });
  });

  describe('keys', () => {
    it('an unknown keyid is refused (UNKNOWN_KEY)', async () => {
      const { signed, store, options } = setup();
      await verifyMessageSignature(signed, options);
      const unknown = signAsRequest(t8Request().message, { ...AS1, kid: 'no-such-key' });
      expect(await reasonOf(verifyMessageSignature(unknown, options))).to.equal('UNKNOWN_KEY');
      expect(store.calls).to.deep.equal([AS1.kid, 'no-such-key']);
    });

    it("another AS's keyid does not resolve for this AS (UNKNOWN_KEY)", async () => {
      const byAs2 = signAsRequest(t8Request().message, AS2);
      await verifyMessageSignature(byAs2, edgeOptions(keyStoreOf(AS2).resolveKey));
      const as1Store = keyStoreOf(AS1);
      expect(await reasonOf(verifyMessageSignature(byAs2, edgeOptions(as1Store.resolveKey)))).to.equal('UNKNOWN_KEY');
      expect(as1Store.calls).to.deep.equal([AS2.kid]);
    });

    it("a signature by another AS's key under this AS's keyid does not verify (SIGNATURE_INVALID)", async () => {
      const impostor = asKey(AS1.kid, 'ecdsa-p256-sha256');
      const { signed, options } = setup();
      await verifyMessageSignature(signed, options);
      const forged = signAsRequest(t8Request().message, impostor);
      expect(await reasonOf(verifyMessageSignature(forged, options))).to.equal('SIGNATURE_INVALID');
    });

    it('a key store failure propagates unchanged instead of becoming a 401', async () => {
      const { signed, options } = setup();
      await verifyMessageSignature(signed, options);
      const down = new AeseError('UNAVAILABLE', 'key store unavailable');
      const err = await verifyMessageSignature(signed, {
        ...options,
        resolveKey: async () => {
          throw down;
        },
      }).catch((e: unknown) => e);
      expect(err).to.equal(down);
    });

    it('a registered key that does not fit its algorithm verifies nothing (ALGORITHM_MISMATCH)', async () => {
      const { signed, options } = setup();
      await verifyMessageSignature(signed, options);
      const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey;
      const wrongCurve = { ...options, resolveKey: async () => ({ alg: 'ecdsa-p256-sha256' as const, key: p384 }) };
      expect(await reasonOf(verifyMessageSignature(signed, wrongCurve))).to.equal('ALGORITHM_MISMATCH');
      const privateOne = { ...options, resolveKey: async () => ({ alg: AS1.alg, key: AS1.privateKey }) };
      expect(await reasonOf(verifyMessageSignature(signed, privateOne))).to.equal('ALGORITHM_MISMATCH');
    });
  });

  describe('algorithms', () => {
    it('an alg parameter that differs from the registered key is refused (ALGORITHM_MISMATCH)', async () => {
      const { signed, store, options } = setup({ params: { alg: 'ecdsa-p256-sha256' } });
      expect(await verifyMessageSignature(signed, options)).to.include({ alg: 'ecdsa-p256-sha256' });
      const input = header(signed, 'signature-input').replace('alg="ecdsa-p256-sha256"', 'alg="ed25519"');
      expect(await reasonOf(verifyMessageSignature(withHeaders(signed, { 'signature-input': input }), options))).to.equal('ALGORITHM_MISMATCH');
      expect(store.calls).to.have.length(2);
    });

    it('an Ed25519 signature under a keyid registered for P-256 is refused (ALGORITHM_MISMATCH)', async () => {
      const byEd25519 = signAsRequest(t8Request().message, { ...AS2, kid: AS1.kid }, { params: { alg: 'ed25519' } });
      const { signed, options } = setup();
      await verifyMessageSignature(signed, options);
      expect(await reasonOf(verifyMessageSignature(byEd25519, options))).to.equal('ALGORITHM_MISMATCH');
    });

    for (const alg of ['hmac-sha256', 'rsa-pss-sha512', 'rsa-v1_5-sha256', 'ecdsa-p384-sha384', 'none']) {
      it(`alg="${alg}" is refused before any key lookup (ALGORITHM_NOT_ALLOWED)`, async () => {
        const { signed, store, options } = setup();
        await verifyMessageSignature(signed, options);
        const input = `${header(signed, 'signature-input')};alg="${alg}"`;
        expect(await reasonOf(verifyMessageSignature(withHeaders(signed, { 'signature-input': input }), options))).to.equal('ALGORITHM_NOT_ALLOWED');
        expect(store.calls).to.have.length(1);
      });
    }

    it('an HMAC-signed request is refused by the profile even without alg, and accepted only when explicitly allowed', async () => {
      const secret = createSecretKey(Buffer.alloc(32, 7));
      const { message } = t8Request();
      const out = signMessage(message, {
        label: 'sig1',
        components: T8_REQUEST_COMPONENTS,
        params: { created: NOW, nonce: createNonce(), keyid: 'shared' },
        key: secret,
        alg: 'hmac-sha256',
        allowedAlgorithms: ['hmac-sha256'],
      });
      const signed = withHeaders(message, { 'signature-input': out.signatureInput, signature: out.signature });
      const resolveKey = async () => ({ alg: 'hmac-sha256' as const, key: secret });
      await verifyMessageSignature(signed, edgeOptions(resolveKey, { allowedAlgorithms: ['hmac-sha256'] }));
      expect(await reasonOf(verifyMessageSignature(signed, edgeOptions(resolveKey)))).to.equal('ALGORITHM_NOT_ALLOWED');
    });
  });

  describe('labels and field structure', () => {
    it('a message without Signature or Signature-Input is refused (SIGNATURE_MISSING)', async () => {
      const { signed, store, options } = setup();
      await verifyMessageSignature(signed, options);
      expect(await reasonOf(verifyMessageSignature(withHeaders(signed, { signature: undefined }), options))).to.equal('SIGNATURE_MISSING');
      expect(await reasonOf(verifyMessageSignature(withHeaders(signed, { 'signature-input': undefined }), options))).to.equal('SIGNATURE_MISSING');
      expect(await reasonOf(verifyMessageSignature(t8Request().message, options))).to.equal('SIGNATURE_MISSING');
      expect(store.calls).to.have.length(1);
    });

    it('a signature under another label is refused (LABEL_MISSING)', async () => {
      const { signed, store, options } = setup();
      await verifyMessageSignature(signed, options);
      const relabelled = withHeaders(signed, {
        'signature-input': header(signed, 'signature-input').replace(/^sig1=/, 'sig2='),
        signature: header(signed, 'signature').replace(/^sig1=/, 'sig2='),
      });
      expect(await reasonOf(verifyMessageSignature(relabelled, options))).to.equal('LABEL_MISSING');
      expect(store.calls).to.have.length(1);
    });

    it('other signatures beside sig1 are tolerated', async () => {
      const { signed, options } = setup();
      const other = signAsRequest(t8Request().message, AS2);
      const both = withHeaders(signed, {
        'signature-input': [header(other, 'signature-input').replace(/^sig1=/, 'proxy='), header(signed, 'signature-input')],
        signature: `${header(signed, 'signature')}, ${header(other, 'signature').replace(/^sig1=/, 'proxy=')}`,
      });
      expect(await verifyMessageSignature(both, options)).to.include({ keyid: AS1.kid });
    });

    it('a repeated label is refused in either field, on one line or across lines (DUPLICATE_LABEL)', async () => {
      const { signed, store, options } = setup();
      await verifyMessageSignature(signed, options);
      const other = signAsRequest(t8Request().message, AS1);
      const input = header(signed, 'signature-input');
      const signature = header(signed, 'signature');
      const variants: HttpMessageView[] = [
        withHeaders(signed, { 'signature-input': `${header(other, 'signature-input')}, ${input}` }),
        withHeaders(signed, { 'signature-input': [header(other, 'signature-input'), input] }),
        withHeaders(signed, { 'signature-input': `${input}, ${input}` }),
        withHeaders(signed, { signature: `${header(other, 'signature')}, ${signature}` }),
        withHeaders(signed, { signature: [signature, signature] }),
      ];
      for (const variant of variants) {
        expect(await reasonOf(verifyMessageSignature(variant, options))).to.equal('DUPLICATE_LABEL');
      }
      expect(store.calls).to.have.length(1);
    });

    it('commas inside string parameters are not mistaken for repeated labels', async () => {
      const { signed, options } = setup({ params: { tag: 'a, sig1=("@method");created=1, b' } });
      expect(await verifyMessageSignature(signed, options)).to.include({ tag: 'a, sig1=("@method");created=1, b' });
    });

    it('malformed dictionaries and members of the wrong type are refused (SIGNATURE_MALFORMED)', async () => {
      const { signed, store, options } = setup();
      await verifyMessageSignature(signed, options);
      const input = header(signed, 'signature-input');
      const bytes = signatureBytes(signed).toString('base64');
      const variants: Record<string, string>[] = [
        { 'signature-input': input.slice(0, -1) },
        { 'signature-input': `${input},` },
        { 'signature-input': 'sig1="@method"' },
        { 'signature-input': `Sig1=${input.slice(5)}` },
        { signature: `sig1="${bytes}"` },
        { signature: `sig1=(:${bytes}:)` },
        { signature: `sig1=${bytes}` },
      ];
      for (const variant of variants) {
        expect(await reasonOf(verifyMessageSignature(withHeaders(signed, variant), options))).to.equal('SIGNATURE_MALFORMED');
      }
      expect(store.calls).to.have.length(1);
    });
  });

  describe('parameters and time', () => {
    it('a missing nonce or created is refused (PARAM_MISSING)', async () => {
      const { signed, store, options } = setup();
      await verifyMessageSignature(signed, options);
      const noNonce = header(signed, 'signature-input').replace(/;nonce="[^"]*"/, '');
      const noCreated = header(signed, 'signature-input').replace(/;created=\d+/, '');
      expect(await reasonOf(verifyMessageSignature(withHeaders(signed, { 'signature-input': noNonce }), options))).to.equal('PARAM_MISSING');
      expect(await reasonOf(verifyMessageSignature(withHeaders(signed, { 'signature-input': noCreated }), options))).to.equal('PARAM_MISSING');
      expect(store.calls).to.have.length(1);
    });

    it('a nonce that is not unpadded base64url of at least 128 bits, or is too long, is refused before any key lookup (NONCE_INVALID)', async () => {
      const { message } = t8Request();
      const store = keyStoreOf(AS1);
      const options = edgeOptions(store.resolveKey);
      const withNonce = (nonce: string) => signAsRequest(message, AS1, { params: { nonce } });
      // Controls: what createNonce makes, and longer nonces up to the cap.
      await verifyMessageSignature(withNonce(createNonce()), options);
      await verifyMessageSignature(withNonce(Buffer.alloc(32, 7).toString('base64url')), options);
      await verifyMessageSignature(withNonce('A'.repeat(128)), options);
      expect(store.calls).to.have.length(3);
      const bad: [string, string][] = [
        ['96 bits', Buffer.alloc(12, 7).toString('base64url')],
        ['120 bits', Buffer.alloc(15, 7).toString('base64url')],
        ['":/=" characters', 'a:b/c=d:e/f=g:h/i=j:k/l=m'],
        ['padding', `${Buffer.alloc(16, 7).toString('base64url')}==`],
        ['base64 "+" and "/"', `${Buffer.alloc(15, 0xfb).toString('base64')}+/`],
        ['a length of 4n+1', 'A'.repeat(25)],
        ['stray low bits', `${'A'.repeat(21)}B`],
        ['a space', 'AAAAAAAAAAA AAAAAAAAAAA'],
        ['129 characters', 'A'.repeat(129)],
      ];
      for (const [what, nonce] of bad) {
        expect(await reasonOf(verifyMessageSignature(withNonce(nonce), options)), what).to.equal('NONCE_INVALID');
      }
      expect(store.calls, 'a refused nonce needed no key').to.have.length(3);
      // Without a nonce rule the library takes any sf-string (other profiles than T8).
      await verifyMessageSignature(withNonce('a:b/c=d'), { ...options, nonce: undefined });
    });

    it('createNonce always satisfies the T8 nonce rule', () => {
      for (let i = 0; i < 64; i++) expect(isAcceptableNonce(createNonce(), { minBytes: NONCE_MIN_BYTES, maxChars: NONCE_MAX_CHARS })).to.equal(true);
    });

    it('parameters of the wrong type are refused (SIGNATURE_MALFORMED)', async () => {
      const { signed, options } = setup();
      await verifyMessageSignature(signed, options);
      for (const [from, to] of [
        [/;created=(\d+)/, ';created="$1"'],
        [/;created=(\d+)/, ';created=$1.5'],
        [/;keyid="([^"]*)"/, ';keyid=$1'],
        [/;nonce="([^"]*)"/, ';nonce=:AAAA:'],
      ] as const) {
        const input = header(signed, 'signature-input').replace(from, to);
        expect(await reasonOf(verifyMessageSignature(withHeaders(signed, { 'signature-input': input }), options))).to.equal('SIGNATURE_MALFORMED');
      }
    });

    it('unknown parameters are signed and kept, unless the edge allow-list refuses them (PARAM_NOT_ALLOWED)', async () => {
      const { message } = t8Request();
      const theirs = await httpbis.signMessage(
        {
          key: createSigner(AS1.privateKey, AS1.alg, AS1.kid),
          name: 'sig1',
          fields: T8_REQUEST_COMPONENTS,
          params: ['created', 'nonce', 'keyid', 'purpose'],
          paramValues: { created: new Date(NOW * 1000), nonce: createNonce(), purpose: 'monitoring' },
        },
        { method: message.method!, url: message.targetUri!, headers: message.headers as Record<string, string> },
      );
      const received = { ...message, headers: theirs.headers };
      const store = keyStoreOf(AS1);
      const lenient = await verifyMessageSignature(received, { ...edgeOptions(store.resolveKey), allowedParams: undefined });
      expect(lenient.params).to.include({ purpose: 'monitoring' });
      expect(await reasonOf(verifyMessageSignature(received, edgeOptions(store.resolveKey)))).to.equal('PARAM_NOT_ALLOWED');
      expect(store.calls).to.have.length(1);
    });

    it('a tag other than the expected one is refused (TAG_MISMATCH)', async () => {
      const { signed, store, options } = setup({ params: { tag: 't8-request' } });
      await verifyMessageSignature(signed, { ...options, expectedTag: 't8-request' });
      expect(await reasonOf(verifyMessageSignature(signed, { ...options, expectedTag: 't8-notification' }))).to.equal('TAG_MISMATCH');
      const untagged = setup();
      expect(await reasonOf(verifyMessageSignature(untagged.signed, { ...untagged.options, expectedTag: 't8-request' }))).to.equal('TAG_MISMATCH');
      expect(store.calls).to.have.length(1);
      expect(untagged.store.calls).to.deep.equal([]);
    });

    it('created must lie within [now - 60 s, now + 10 s]; expires must be in the future', async () => {
      for (const created of [NOW - 60, NOW, NOW + 10]) {
        const { signed, options } = setup({ params: { created } });
        await verifyMessageSignature(signed, options);
      }
      const cases: [Parameters<typeof setup>[0], SignatureErrorReason][] = [
        [{ params: { created: NOW - 61 } }, 'CREATED_TOO_OLD'],
        [{ params: { created: NOW + 11 } }, 'CREATED_IN_FUTURE'],
        [{ params: { expires: NOW } }, 'SIGNATURE_EXPIRED'],
      ];
      for (const [overrides, reason] of cases) {
        const { signed, store, options } = setup(overrides);
        expect(await reasonOf(verifyMessageSignature(signed, options))).to.equal(reason);
        expect(store.calls).to.deep.equal([]);
      }
      const { signed, options } = setup({ params: { expires: NOW + 1 } });
      expect(await verifyMessageSignature(signed, options)).to.include({ expires: NOW + 1 });
    });
  });

  describe('oversized fields', () => {
    it('a Signature-Input or Signature over the bound is refused before parsing (SIGNATURE_HEADER_TOO_LARGE)', async () => {
      const { signed, store, options } = setup();
      await verifyMessageSignature(signed, options);
      const padding = `pad=("x");nonce="${'a'.repeat(4096)}"`;
      const bigInput = withHeaders(signed, { 'signature-input': `${header(signed, 'signature-input')}, ${padding}` });
      const bigSignature = withHeaders(signed, { signature: `${header(signed, 'signature')}, pad=:${'A'.repeat(4096)}:` });
      const manyLines = withHeaders(signed, { signature: [header(signed, 'signature'), ...Array.from({ length: 200 }, () => `p=:${'A'.repeat(20)}:`)] });
      for (const big of [bigInput, bigSignature, manyLines]) {
        expect(await reasonOf(verifyMessageSignature(big, options))).to.equal('SIGNATURE_HEADER_TOO_LARGE');
      }
      expect(await reasonOf(verifyMessageSignature(signed, { ...options, maxSignatureInputBytes: 100 }))).to.equal('SIGNATURE_HEADER_TOO_LARGE');
      await verifyMessageSignature(bigInput, { ...options, maxSignatureInputBytes: 8192 });
      expect(store.calls).to.have.length(2);
    });

    it('a field full of commas is refused as malformed, quickly', async () => {
      const { signed, store, options } = setup();
      const commas = withHeaders(signed, {
        'signature-input': `${header(signed, 'signature-input')}, pad=("x");tag="${','.repeat(3000)}"`,
      });
      const started = process.hrtime.bigint();
      expect(await reasonOf(verifyMessageSignature(commas, options))).to.equal('SIGNATURE_MALFORMED');
      expect(Number(process.hrtime.bigint() - started) / 1e6).to.be.below(1000);
      expect(store.calls).to.deep.equal([]);
    });
  });

  it('refusal messages never echo the token, the signature or field values', async () => {
    const { signed, options } = setup();
    const token = header(signed, 'authorization').slice('Bearer '.length);
    const bytes = signatureBytes(signed).toString('base64');
    const failures = [
      verifyMessageSignature(withHeaders(signed, { authorization: `Bearer ${token}x` }), options),
      verifyMessageSignature(withHeaders(signed, { authorization: `Bearer ${token}\n` }), options),
      verifyMessageSignature(withHeaders(signed, { signature: `sig1="${bytes}"` }), options),
    ];
    for (const failure of failures) {
      const err = (await failure.catch((e: unknown) => e)) as Error;
      expect(err).to.be.instanceOf(SignatureError);
      expect(err.message).to.not.contain(token);
      expect(err.message).to.not.contain(bytes);
    }
  });
});
