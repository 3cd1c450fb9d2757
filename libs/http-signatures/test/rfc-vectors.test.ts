import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { expect } from 'chai';
import { computeContentDigest, createSignatureBase, SignatureError, signMessage, verifyContentDigest, verifyMessageSignature } from '../src/index.js';
import type { HttpMessageView, SignatureAlgorithm, SignatureErrorReason, VerifyMessageSignatureOptions } from '../src/index.js';
import {
  PUBLISHED_SIGNATURES,
  RFC_CREATED,
  TEST_KEY_ECC_P256_PRIVATE,
  TEST_KEY_ECC_P256_PUBLIC,
  TEST_KEY_ECC_P256_PUBLIC_PEM,
  TEST_KEY_ED25519_PRIVATE,
  TEST_KEY_ED25519_PUBLIC,
  TEST_KEY_ED25519_PUBLIC_PEM,
  TEST_KEY_RSA_PSS_PUBLIC,
  TEST_REQUEST_BODY,
  TEST_REQUEST_DIGEST,
  TEST_RESPONSE_BODY,
  TEST_RESPONSE_DIGEST,
  TEST_SHARED_SECRET,
  testRequest,
  testResponse,
} from './rfc9421-fixtures.js';

/** The RFC's keys by keyid, each registered for its one algorithm. */
const RFC_KEYS: Record<string, { alg: SignatureAlgorithm; key: KeyObject }> = {
  'test-key-rsa-pss': { alg: 'rsa-pss-sha512', key: TEST_KEY_RSA_PSS_PUBLIC },
  'test-key-ecc-p256': { alg: 'ecdsa-p256-sha256', key: TEST_KEY_ECC_P256_PUBLIC },
  'test-key-ed25519': { alg: 'ed25519', key: TEST_KEY_ED25519_PUBLIC },
  'test-shared-secret': { alg: 'hmac-sha256', key: TEST_SHARED_SECRET },
};

function rfcOptions(label: string, requiredComponents: string[], extra: Partial<VerifyMessageSignatureOptions> = {}): VerifyMessageSignatureOptions {
  return {
    label,
    requiredComponents,
    requiredParams: ['created', 'keyid'],
    resolveKey: async keyid => RFC_KEYS[keyid],
    ...extra,
  };
}

function signed(message: HttpMessageView, label: string, input: string, signature: string): HttpMessageView {
  return {
    ...message,
    headers: { ...message.headers, 'Signature-Input': `${label}=${input}`, Signature: `${label}=:${signature}:` },
  };
}

async function refusal(promise: Promise<unknown>): Promise<SignatureErrorReason> {
  try {
    await promise;
  } catch (err) {
    expect(err).to.be.instanceOf(SignatureError);
    return (err as SignatureError).reason;
  }
  throw new Error('expected a SignatureError, the signature was accepted');
}

describe('http-signatures: RFC 9421 Appendix B vectors', () => {
  it('B.1.3 and B.1.4: the private test keys are the halves of the published public keys', () => {
    expect(createPublicKey(TEST_KEY_ECC_P256_PRIVATE).export({ type: 'spki', format: 'pem' })).to.equal(TEST_KEY_ECC_P256_PUBLIC_PEM);
    expect(createPublicKey(TEST_KEY_ED25519_PRIVATE).export({ type: 'spki', format: 'pem' })).to.equal(TEST_KEY_ED25519_PUBLIC_PEM);
  });

  it('B.2: the test messages carry the RFC 9530 digests of their content', () => {
    expect(verifyContentDigest(TEST_REQUEST_DIGEST, TEST_REQUEST_BODY).algorithms).to.deep.equal(['sha-512']);
    expect(verifyContentDigest(TEST_RESPONSE_DIGEST, TEST_RESPONSE_BODY).algorithms).to.deep.equal(['sha-512']);
    expect(computeContentDigest(TEST_REQUEST_BODY, 'sha-512')).to.equal(TEST_REQUEST_DIGEST);
  });

  describe('B.2.1 minimal signature using rsa-pss-sha512', () => {
    const input = '();created=1618884473;keyid="test-key-rsa-pss";nonce="b3k2pp5k7z-50gnwp.yemd"';

    it('builds the printed signature base byte for byte', () => {
      const { base } = createSignatureBase(testRequest(), {
        components: [],
        params: { created: RFC_CREATED, keyid: 'test-key-rsa-pss', nonce: 'b3k2pp5k7z-50gnwp.yemd' },
      });
      expect(base).to.equal(`"@signature-params": ${input}`);
    });

    it('verifies the published signature only when rsa-pss-sha512 is explicitly allowed', async () => {
      const message = signed(testRequest(), 'sig-b21', input, PUBLISHED_SIGNATURES.b21);
      const ok = await verifyMessageSignature(message, rfcOptions('sig-b21', [], { requiredParams: ['created', 'keyid', 'nonce'], allowedAlgorithms: ['rsa-pss-sha512'] }));
      expect(ok).to.include({ keyid: 'test-key-rsa-pss', alg: 'rsa-pss-sha512', nonce: 'b3k2pp5k7z-50gnwp.yemd' });
      expect(ok.coveredComponents).to.deep.equal([]);
      expect(await refusal(verifyMessageSignature(message, rfcOptions('sig-b21', [])))).to.equal('ALGORITHM_NOT_ALLOWED');
    });
  });

  describe('B.2.2 selective covered components using rsa-pss-sha512', () => {
    const input = '("@authority" "content-digest" "@query-param";name="Pet");created=1618884473;keyid="test-key-rsa-pss";tag="header-example"';

    it('builds the printed signature base byte for byte (with @query-param)', () => {
      const { base, signatureParams } = createSignatureBase(testRequest(), {
        components: ['@authority', 'content-digest', '@query-param;name="Pet"'],
        params: { created: RFC_CREATED, keyid: 'test-key-rsa-pss', tag: 'header-example' },
      });
      expect(signatureParams).to.equal(input);
      expect(base).to.equal(
        ['"@authority": example.com', `"content-digest": ${TEST_REQUEST_DIGEST}`, '"@query-param";name="Pet": dog', `"@signature-params": ${input}`].join('\n'),
      );
    });

    it('verifies the published signature, with its tag', async () => {
      const message = signed(testRequest(), 'sig-b22', input, PUBLISHED_SIGNATURES.b22);
      const options = rfcOptions('sig-b22', ['@authority', 'content-digest', '@query-param;name="Pet"'], {
        allowedAlgorithms: ['rsa-pss-sha512'],
        expectedTag: 'header-example',
      });
      expect(await verifyMessageSignature(message, options)).to.include({ tag: 'header-example' });
      expect(await refusal(verifyMessageSignature(message, { ...options, expectedTag: 'other-app' }))).to.equal('TAG_MISMATCH');
    });
  });

  describe('B.2.3 full coverage using rsa-pss-sha512', () => {
    const components = ['date', '@method', '@path', '@query', '@authority', 'content-type', 'content-digest', 'content-length'];
    const input = '("date" "@method" "@path" "@query" "@authority" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-rsa-pss"';

    it('builds the printed signature base byte for byte', () => {
      const { base } = createSignatureBase(testRequest(), {
        components,
        params: { created: RFC_CREATED, keyid: 'test-key-rsa-pss' },
      });
      expect(base).to.equal(
        [
          '"date": Tue, 20 Apr 2021 02:07:55 GMT',
          '"@method": POST',
          '"@path": /foo',
          '"@query": ?param=Value&Pet=dog',
          '"@authority": example.com',
          '"content-type": application/json',
          `"content-digest": ${TEST_REQUEST_DIGEST}`,
          '"content-length": 18',
          `"@signature-params": ${input}`,
        ].join('\n'),
      );
    });

    it('verifies the published signature', async () => {
      const message = signed(testRequest(), 'sig-b23', input, PUBLISHED_SIGNATURES.b23);
      const ok = await verifyMessageSignature(message, rfcOptions('sig-b23', components, { allowedAlgorithms: ['rsa-pss-sha512'] }));
      expect(ok.coveredComponents).to.deep.equal(components);
    });
  });

  describe('B.2.4 signing a response using ecdsa-p256-sha256', () => {
    const components = ['@status', 'content-type', 'content-digest', 'content-length'];
    const input = '("@status" "content-type" "content-digest" "content-length");created=1618884473;keyid="test-key-ecc-p256"';

    it('builds the printed signature base byte for byte', () => {
      const { base } = createSignatureBase(testResponse(), {
        components,
        params: { created: RFC_CREATED, keyid: 'test-key-ecc-p256' },
      });
      expect(base).to.equal(
        ['"@status": 200', '"content-type": application/json', `"content-digest": ${TEST_RESPONSE_DIGEST}`, '"content-length": 23', `"@signature-params": ${input}`].join('\n'),
      );
    });

    it('verifies the published signature with the profile defaults, and not after the status changes', async () => {
      const message = signed(testResponse(), 'sig-b24', input, PUBLISHED_SIGNATURES.b24);
      const ok = await verifyMessageSignature(message, rfcOptions('sig-b24', components));
      expect(ok).to.include({ alg: 'ecdsa-p256-sha256', keyid: 'test-key-ecc-p256', created: RFC_CREATED });
      const tampered = { ...message, status: 201 };
      expect(await refusal(verifyMessageSignature(tampered, rfcOptions('sig-b24', components)))).to.equal('SIGNATURE_INVALID');
    });

    it('a fresh signature by signMessage verifies (ECDSA is not deterministic, so bytes differ)', async () => {
      const out = signMessage(testResponse(), {
        label: 'sig-b24',
        components,
        params: { created: RFC_CREATED, keyid: 'test-key-ecc-p256' },
        key: TEST_KEY_ECC_P256_PRIVATE,
        alg: 'ecdsa-p256-sha256',
      });
      expect(out.signatureInput).to.equal(`sig-b24=${input}`);
      expect(Buffer.from(out.signature.split(':')[1], 'base64')).to.have.length(64);
      const message = { ...testResponse(), headers: { ...testResponse().headers, 'signature-input': out.signatureInput, signature: out.signature } };
      await verifyMessageSignature(message, rfcOptions('sig-b24', components));
    });
  });

  describe('B.2.5 signing a request using hmac-sha256', () => {
    const input = '("date" "@authority" "content-type");created=1618884473;keyid="test-shared-secret"';
    const options = {
      label: 'sig-b25',
      components: ['date', '@authority', 'content-type'],
      params: { created: RFC_CREATED, keyid: 'test-shared-secret' },
      key: TEST_SHARED_SECRET,
      alg: 'hmac-sha256' as const,
    };

    it('reproduces the published signature when hmac-sha256 is explicitly allowed, and is refused by default', () => {
      const out = signMessage(testRequest(), { ...options, allowedAlgorithms: ['hmac-sha256'] });
      expect(out.signatureBase).to.equal(
        ['"date": Tue, 20 Apr 2021 02:07:55 GMT', '"@authority": example.com', '"content-type": application/json', `"@signature-params": ${input}`].join('\n'),
      );
      expect(out.signature).to.equal(`sig-b25=:${PUBLISHED_SIGNATURES.b25}:`);
      expect(() => signMessage(testRequest(), options)).to.throw(TypeError, /not allowed/);
    });

    it('verifies the published signature only when hmac-sha256 is explicitly allowed', async () => {
      const message = signed(testRequest(), 'sig-b25', input, PUBLISHED_SIGNATURES.b25);
      const required = ['date', '@authority', 'content-type'];
      await verifyMessageSignature(message, rfcOptions('sig-b25', required, { allowedAlgorithms: ['hmac-sha256'] }));
      expect(await refusal(verifyMessageSignature(message, rfcOptions('sig-b25', required)))).to.equal('ALGORITHM_NOT_ALLOWED');
    });
  });

  describe('B.2.6 signing a request using ed25519', () => {
    const components = ['date', '@method', '@path', '@authority', 'content-type', 'content-length'];
    const input = '("date" "@method" "@path" "@authority" "content-type" "content-length");created=1618884473;keyid="test-key-ed25519"';

    it('signMessage reproduces the printed signature base, Signature-Input and signature bytes exactly', () => {
      const out = signMessage(testRequest(), {
        label: 'sig-b26',
        components,
        params: { created: RFC_CREATED, keyid: 'test-key-ed25519' },
        key: TEST_KEY_ED25519_PRIVATE,
        alg: 'ed25519',
      });
      expect(out.signatureBase).to.equal(
        [
          '"date": Tue, 20 Apr 2021 02:07:55 GMT',
          '"@method": POST',
          '"@path": /foo',
          '"@authority": example.com',
          '"content-type": application/json',
          '"content-length": 18',
          `"@signature-params": ${input}`,
        ].join('\n'),
      );
      expect(out.signatureInput).to.equal(`sig-b26=${input}`);
      expect(out.signature).to.equal(`sig-b26=:${PUBLISHED_SIGNATURES.b26}:`);
    });

    it('verifies the published signature, and not with another key under the same keyid', async () => {
      const message = signed(testRequest(), 'sig-b26', input, PUBLISHED_SIGNATURES.b26);
      const ok = await verifyMessageSignature(message, rfcOptions('sig-b26', ['@method', '@path', '@authority']));
      expect(ok).to.include({ alg: 'ed25519', keyid: 'test-key-ed25519' });
      const { publicKey: stranger } = generateKeyPairSync('ed25519');
      const reason = await refusal(verifyMessageSignature(message, rfcOptions('sig-b26', [], { resolveKey: async () => ({ alg: 'ed25519', key: stranger }) })));
      expect(reason).to.equal('SIGNATURE_INVALID');
    });
  });

  describe('Section 2.4: a response signature covering its request with ;req (ecdsa-p256-sha256)', () => {
    const requestDigest = TEST_REQUEST_DIGEST;
    const responseBody = Buffer.from('{"busy": true, "message": "Your call is very important to us"}');
    const responseDigest = 'sha-512=:0Y6iCBzGg5rZtoXS95Ijz03mslf6KAMCloESHObfwnHJDbkkWWQz6PhhU9kxsTbARtY2PTBOzq24uJFpHsMuAg==:';
    const input = '("@status" "content-digest" "content-type" "@authority";req "@method";req "@path";req "content-digest";req);created=1618884479;keyid="test-key-ecc-p256"';
    const published = 'dMT/A/76ehrdBTD/2Xx8QuKV6FoyzEP/I9hdzKN8LQJLNgzU4W767HK05rx1i8meNQQgQPgQp8wq2ive3tV5Ag==';
    const response: HttpMessageView = {
      status: 503,
      headers: {
        date: 'Tue, 20 Apr 2021 02:07:56 GMT',
        'content-type': 'application/json',
        'content-length': '62',
        'content-digest': responseDigest,
      },
    };
    const components = ['@status', 'content-digest', 'content-type', '@authority;req', '@method;req', '@path;req', 'content-digest;req'];

    it('builds the printed signature base byte for byte', () => {
      expect(verifyContentDigest(responseDigest, responseBody).algorithms).to.deep.equal(['sha-512']);
      const { base } = createSignatureBase(response, {
        components,
        params: { created: 1618884479, keyid: 'test-key-ecc-p256' },
        request: testRequest(),
      });
      expect(base).to.equal(
        [
          '"@status": 503',
          `"content-digest": ${responseDigest}`,
          '"content-type": application/json',
          '"@authority";req: example.com',
          '"@method";req: POST',
          '"@path";req: /foo',
          `"content-digest";req: ${requestDigest}`,
          `"@signature-params": ${input}`,
        ].join('\n'),
      );
    });

    it('verifies the published signature against the request it answers, and not against another request', async () => {
      const message = signed(response, 'reqres', input, published);
      const ok = await verifyMessageSignature(message, rfcOptions('reqres', components, { request: testRequest() }));
      expect(ok.coveredComponents).to.deep.equal(components);
      const otherRequest = { ...testRequest(), targetUri: 'https://example.com/bar?param=Value&Pet=dog' };
      expect(await refusal(verifyMessageSignature(message, rfcOptions('reqres', components, { request: otherRequest })))).to.equal('SIGNATURE_INVALID');
      expect(await refusal(verifyMessageSignature(message, rfcOptions('reqres', components)))).to.equal('COMPONENT_NOT_PRESENT');
    });
  });

  describe('B.3 TLS-terminating proxies (ecdsa-p256-sha256)', () => {
    const clientCert =
      ':MIIBqDCCAU6gAwIBAgIBBzAKBggqhkjOPQQDAjA6MRswGQYDVQQKDBJMZXQncyBBdXRoZW50aWNhdGUxGzAZBgNVBAMMEkxBIEludGVybWVkaWF0ZSBD' +
      'QTAeFw0yMDAxMTQyMjU1MzNaFw0yMTAxMjMyMjU1MzNaMA0xCzAJBgNVBAMMAkJDMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE8YnXXfaUgmnMtOXU/IncWalRhebrXm' +
      'ckC8vdgJ1p5Be5F/3YC8OthxM4+k1M6aEAEFcGzkJiNy6J84y7uzo9M6NyMHAwCQYDVR0TBAIwADAfBgNVHSMEGDAWgBRm3WjLa38lbEYCuiCPct0ZaSED2DAOBgNVHQ8B' +
      'Af8EBAMCBsAwEwYDVR0lBAwwCgYIKwYBBQUHAwIwHQYDVR0RAQH/BBMwEYEPYmRjQGV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIBHda/r1vaL6G3VliL4/Di6YK0' +
      'Q6bMjeSkC3dFCOOB8TAiEAx/kHSB4urmiZ0NX5r5XarmPk0wmuydBVoU4hBVZ1yhk=:';
    const input = '("@path" "@query" "@method" "@authority" "client-cert");created=1618884473;keyid="test-key-ecc-p256"';
    const request: HttpMessageView = {
      method: 'POST',
      targetUri: 'https://service.internal.example/foo?param=Value&Pet=dog',
      headers: {
        host: 'service.internal.example',
        date: 'Tue, 20 Apr 2021 02:07:55 GMT',
        'content-type': 'application/json',
        'content-length': '18',
        'client-cert': clientCert,
      },
    };

    it('verifies the published signature over the forwarded client certificate', async () => {
      const message = signed(request, 'ttrp', input, 'xVMHVpawaAC/0SbHrKRs9i8I3eOs5RtTMGCWXm/9nvZzoHsIg6Mce9315T6xoklyy0yzhD9ah4JHRwMLOgmizw==');
      const required = ['@path', '@query', '@method', '@authority', 'client-cert'];
      await verifyMessageSignature(message, rfcOptions('ttrp', required));
      const swapped = { ...message, headers: { ...message.headers, 'client-cert': clientCert.replace('MIIBqD', 'MIIBqE') } };
      expect(await refusal(verifyMessageSignature(swapped, rfcOptions('ttrp', required)))).to.equal('SIGNATURE_INVALID');
    });
  });

  describe('B.4 HTTP message transformations (ed25519)', () => {
    const input = '("@method" "@path" "@authority" "accept");created=1618884473;keyid="test-key-ed25519"';
    const published = 'ZT1kooQsEHpZ0I1IjCqtQppOmIqlJPeo7DHR3SoMn0s5JZ1eRGS0A+vyYP9t/LXlh5QMFFQ6cpLt2m0pmj3NDA==';
    const original: HttpMessageView = {
      method: 'GET',
      targetUri: 'https://example.org/demo?name1=Value1&Name2=value2',
      headers: { Host: 'example.org', Date: 'Fri, 15 Jul 2022 14:24:55 GMT', Accept: ['application/json', '*/*'] },
    };
    const required = ['@method', '@path', '@authority', 'accept'];
    const verifyB4 = (message: HttpMessageView) => verifyMessageSignature(signed(message, 'transform', input, published), rfcOptions('transform', required));

    it('signMessage reproduces the published signature from two Accept field lines', () => {
      const out = signMessage(original, {
        label: 'transform',
        components: required,
        params: { created: RFC_CREATED, keyid: 'test-key-ed25519' },
        key: TEST_KEY_ED25519_PRIVATE,
        alg: 'ed25519',
      });
      expect(out.signature).to.equal(`transform=:${published}:`);
    });

    it('still verifies after transformations of what is not covered', async () => {
      await verifyB4(original);
      await verifyB4({
        ...original,
        targetUri: 'https://example.org/demo?name1=Value1&Name2=value2&param=added',
        headers: { ...original.headers, 'Accept-Language': 'en-US,en;q=0.5' },
      });
      await verifyB4({
        ...original,
        headers: { Host: 'example.org', Accept: 'application/json, */*', Referer: 'https://developer.example.org/demo' },
      });
    });

    it('no longer verifies after transformations of what is covered', async () => {
      expect(await refusal(verifyB4({ ...original, method: 'POST' }))).to.equal('SIGNATURE_INVALID');
      expect(await refusal(verifyB4({ ...original, targetUri: 'https://example.com/demo?name1=Value1&Name2=value2' }))).to.equal('SIGNATURE_INVALID');
      expect(await refusal(verifyB4({ ...original, headers: { ...original.headers, Accept: ['*/*', 'application/json'] } }))).to.equal('SIGNATURE_INVALID');
    });
  });
});

describe('http-signatures: RFC 9530 Content-Digest examples', () => {
  const hello = Buffer.from('{"hello": "world"}\n');

  it('section 2 and Appendix B.1: sha-512 and sha-256 of {"hello": "world"} and LF', () => {
    expect(computeContentDigest(hello, 'sha-512')).to.equal('sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:');
    expect(computeContentDigest(hello, 'sha-256')).to.equal('sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:');
    expect(computeContentDigest(hello)).to.equal('sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:');
  });

  it('Appendix B.2: sha-256 of empty content', () => {
    expect(computeContentDigest(new Uint8Array(0))).to.equal('sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:');
    expect(verifyContentDigest('sha-256=:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=:', new Uint8Array(0)).algorithms).to.deep.equal(['sha-256']);
  });

  it('verifies both published digests together, and neither one for other content', () => {
    const both = 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:, sha-512=:YMAam51Jz/jOATT6/zvHrLVgOYTGFy1d6GJiOHTohq4yP+pgk4vf2aCsyRZOtw8MjkM7iw7yZ/WkppmM44T3qg==:';
    expect(verifyContentDigest(both, hello).algorithms).to.deep.equal(['sha-256', 'sha-512']);
    expect(() => verifyContentDigest(both, Buffer.from('{"hello": "world"}'))).to.throw(/does not match/);
  });
});
