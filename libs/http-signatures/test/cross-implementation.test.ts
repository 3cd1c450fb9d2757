/**
 * Interoperability with an independent RFC 9421 implementation, the `http-message-signatures`
 * npm package, playing the AS's client: what it signs we verify, what we sign it verifies.
 */
import { expect } from 'chai';
import { createSigner, createVerifier, httpbis } from 'http-message-signatures';
import type { Request as TheirRequest, Response as TheirResponse } from 'http-message-signatures';
import { computeContentDigest, createNonce, SignatureError, signMessage, verifyContentDigest, verifyMessageSignature } from '../src/index.js';
import type { HttpMessageView } from '../src/index.js';
import { asKey, edgeOptions, keyStoreOf, signAsRequest, T8_REQUEST_COMPONENTS, t8Request, withHeaders } from './t8-fixtures.js';
import type { AsKey } from './t8-fixtures.js';

/** Their library checks `created` against the real clock, so these tests use it too. */
function realNow(): number {
  return Math.floor(Date.now() / 1000) - 1;
}

function theirRequest(message: HttpMessageView): TheirRequest {
  const headers: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(message.headers)) {
    if (value !== undefined) headers[name] = typeof value === 'string' ? value : [...value];
  }
  return { method: message.method!, url: message.targetUri!, headers };
}

function theirKeyLookup(key: AsKey) {
  return async () => ({ id: key.kid, algs: [key.alg], verify: createVerifier(key.publicKey, key.alg) });
}

const ALGS = ['ecdsa-p256-sha256', 'ed25519'] as const;

describe('http-signatures: cross-implementation with the http-message-signatures package', () => {
  for (const alg of ALGS) {
    describe(alg, () => {
      const key = asKey(`as-1-${alg}`, alg);

      it('verifies a request the other implementation signed (created, nonce, keyid) and refuses it once tampered', async () => {
        const { message, body } = t8Request();
        const nonce = createNonce();
        const created = realNow();
        const theirs = await httpbis.signMessage(
          {
            key: createSigner(key.privateKey, alg, key.kid),
            name: 'sig1',
            fields: T8_REQUEST_COMPONENTS,
            params: ['created', 'nonce', 'keyid'],
            paramValues: { created: new Date(created * 1000), nonce },
          },
          theirRequest(message),
        );
        const received: HttpMessageView = { ...message, headers: theirs.headers };
        const store = keyStoreOf(key);
        const options = edgeOptions(store.resolveKey, {
          validity: { nowSeconds: created, maxAgeSeconds: 60, maxFutureSeconds: 10 },
        });

        const ok = await verifyMessageSignature(received, options);
        expect(ok).to.deep.include({ keyid: key.kid, alg, nonce, created });
        expect(ok.coveredComponents).to.deep.equal(T8_REQUEST_COMPONENTS);
        expect(verifyContentDigest(received.headers['content-digest'], body).algorithms).to.deep.equal(['sha-256']);

        const tampered = withHeaders(received, { authorization: 'Bearer another-token' });
        const err = await verifyMessageSignature(tampered, options).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(SignatureError).with.property('reason', 'SIGNATURE_INVALID');
        expect(store.calls).to.deep.equal([key.kid, key.kid]);
      });

      it('produces a request signature the other implementation verifies, and it rejects a tampered copy', async () => {
        const { message } = t8Request();
        const signed = signAsRequest(message, key, { params: { created: realNow() } });
        const config = {
          keyLookup: theirKeyLookup(key),
          requiredFields: T8_REQUEST_COMPONENTS,
          requiredParams: ['created', 'nonce', 'keyid'],
        };
        expect(await httpbis.verifyMessage(config, theirRequest(signed))).to.equal(true);
        const tampered = { ...signed, targetUri: signed.targetUri!.replace('flag=1', 'flag=2') };
        expect(await httpbis.verifyMessage(config, theirRequest(tampered))).to.equal(false);
      });

      it('produces a response signature bound to the request (;req) that the other implementation verifies', async () => {
        const scef = asKey('scef-response-1', alg);
        const request = signAsRequest(t8Request().message, key, { params: { created: realNow() } });
        const responseBody = Buffer.from('{"self":"https://scef.example.net:8443/3gpp-monitoring-event/v1/as-1/subscriptions/7"}');
        const response: HttpMessageView = {
          status: 201,
          headers: {
            'content-type': 'application/json',
            'content-digest': computeContentDigest(responseBody, 'sha-256'),
          },
        };
        const components = ['@status', 'content-digest', 'content-type', 'signature;req;key="sig1"', '@method;req', '@target-uri;req'];
        const out = signMessage(response, {
          label: 'sig1',
          components,
          params: { created: realNow(), keyid: scef.kid },
          key: scef.privateKey,
          alg,
          request,
        });
        const requestSignature = (request.headers.signature as string).replace(/^sig1=/, '');
        expect(out.signatureBase).to.contain(`\n"signature";req;key="sig1": ${requestSignature}\n`);
        const signedResponse: TheirResponse = {
          status: 201,
          headers: { ...(response.headers as Record<string, string>), 'Signature-Input': out.signatureInput, Signature: out.signature },
        };
        const config = {
          keyLookup: theirKeyLookup(scef),
          requiredFields: ['@status', 'content-digest', 'content-type'],
          requiredParams: ['created', 'keyid'],
        };
        expect(await httpbis.verifyMessage(config, signedResponse, theirRequest(request))).to.equal(true);

        const resigned = signAsRequest(t8Request().message, key, { params: { created: realNow() } });
        expect(await httpbis.verifyMessage(config, signedResponse, theirRequest(resigned))).to.equal(false);
      });

      it('verifies a response the other implementation signed with ;req components', async () => {
        const scef = asKey('scef-response-2', alg);
        const request = signAsRequest(t8Request().message, key, { params: { created: realNow() } });
        const responseBody = Buffer.from('{}');
        const response: TheirResponse = {
          status: 200,
          headers: { 'content-type': 'application/json', 'content-digest': computeContentDigest(responseBody, 'sha-512') },
        };
        const fields = ['@status', 'content-digest', 'content-type', '"signature";req;key="sig1"', '"@method";req'];
        const created = realNow();
        const theirs = await httpbis.signMessage(
          {
            key: createSigner(scef.privateKey, alg, scef.kid),
            name: 'sig1',
            fields,
            params: ['created', 'keyid', 'alg'],
            paramValues: { created: new Date(created * 1000) },
          },
          response,
          theirRequest(request),
        );
        const received: HttpMessageView = { status: theirs.status, headers: theirs.headers };
        const store = keyStoreOf(scef);
        const options = {
          label: 'sig1',
          requiredComponents: ['@status', 'content-digest', 'content-type', 'signature;req;key="sig1"'],
          requiredParams: ['created', 'keyid', 'alg'] as const,
          resolveKey: store.resolveKey,
          request,
        };
        const ok = await verifyMessageSignature(received, options);
        expect(ok).to.include({ keyid: scef.kid, alg, created });
        expect(ok.coveredComponents).to.deep.equal(['@status', 'content-digest', 'content-type', 'signature;req;key="sig1"', '@method;req']);

        const otherRequest = signAsRequest(t8Request().message, key, { params: { created: realNow() } });
        const err = await verifyMessageSignature(received, { ...options, request: otherRequest }).catch((e: unknown) => e);
        expect(err).to.be.instanceOf(SignatureError).with.property('reason', 'SIGNATURE_INVALID');
      });
    });
  }
});
