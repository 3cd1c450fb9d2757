/**
 * What the library keeps between calls (parsed component identifiers, a message's parsed
 * signature fields, parsed target-URI origins) never hands out a stale or another message's
 * result, and the length-based nonce check says exactly what decoding and re-encoding says.
 */
import { expect } from 'chai';
import { createNonce, createSignatureBase, isAcceptableNonce, SignatureError, signMessage, verifyMessageSignature } from '../src/index.js';
import type { HttpMessageView } from '../src/index.js';
import { MAX_CACHED_COMPONENT_SPECS, parseComponentSpec } from '../src/components.js';
import { asKey, edgeOptions, keyStoreOf, NOW, signAsRequest, t8Request } from './t8-fixtures.js';

const AS = asKey('as-1-cache-key', 'ecdsa-p256-sha256');
const EDGE = asKey('edge-cache-key', 'ed25519');
const RESPONSE_COMPONENTS = ['@status', 'content-digest', 'signature;req;key="sig1"'];

function response(): HttpMessageView {
  return { status: 200, headers: { 'content-digest': 'sha-256=:RK/0qy18MlBSVnWgjwz6lZEWjP/lF5HF9bvEF8FabDg=:' } };
}

/** The value the response's signature base gives the request's `sig1` signature. */
function coveredRequestSignature(request: HttpMessageView): string {
  const { base } = createSignatureBase(response(), { components: RESPONSE_COMPONENTS, params: { created: NOW, keyid: EDGE.kid }, request });
  const line = base.split('\n').find(l => l.startsWith('"signature";req;key="sig1": '));
  if (line === undefined) throw new Error(`no request signature line in ${base}`);
  return line.slice('"signature";req;key="sig1": '.length);
}

function signatureOf(message: HttpMessageView): string {
  return (message.headers.signature as string).slice('sig1='.length);
}

describe('http-signatures: what is kept between calls', () => {
  describe('component identifiers named by application code', () => {
    it('are shared and frozen: changing one throws and the next reader gets the original', () => {
      const first = parseComponentSpec('signature;req;key="sig1"');
      expect(parseComponentSpec('signature;req;key="sig1"')).to.equal(first);
      expect(Object.isFrozen(first)).to.equal(true);
      expect(() => first.params.set('key', 'sig2')).to.throw(TypeError);
      expect(() => first.params.delete('req')).to.throw(TypeError);
      expect(() => first.params.clear()).to.throw(TypeError);
      expect(() => {
        (first as { name: string }).name = 'authorization';
      }).to.throw(TypeError);
      const again = parseComponentSpec('signature;req;key="sig1"');
      expect(again.name).to.equal('signature');
      expect([...again.params]).to.deep.equal([
        ['req', true],
        ['key', 'sig1'],
      ]);
    });

    it('give each spelling its own identifier, and spellings of one identifier the same signature base', () => {
      const request = signAsRequest(t8Request().message, AS);
      const params = { created: NOW, keyid: EDGE.kid };
      const bare = createSignatureBase(response(), { components: ['@status', 'signature;req;key="sig1"'], params, request });
      const quoted = createSignatureBase(response(), { components: ['"@status"', '"signature";req;key="sig1"'], params, request });
      expect(quoted).to.deep.equal(bare);
      expect(parseComponentSpec('@query-param;name="a"').params.get('name')).to.equal('a');
      expect(parseComponentSpec('@query-param;name="b"').params.get('name')).to.equal('b');
    });

    it('stay right when more are named than are kept', () => {
      const count = MAX_CACHED_COMPONENT_SPECS * 2 + 7;
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < count; i++) {
          const component = parseComponentSpec(`@query-param;name="p${i}"`);
          expect(component.name).to.equal('@query-param');
          expect(component.params.get('name')).to.equal(`p${i}`);
        }
      }
    });

    it('are refused every time when invalid, never remembered as valid', () => {
      for (let i = 0; i < 3; i++) {
        expect(() => parseComponentSpec('@unknown')).to.throw(TypeError, 'invalid component identifier');
        expect(() => parseComponentSpec('content-digest;sf')).to.throw(TypeError, 'invalid component identifier');
      }
    });
  });

  describe("a request's parsed signature fields", () => {
    it("give each response its own request's signature, for requests verified one after the other", async () => {
      const requests = [signAsRequest(t8Request().message, AS), signAsRequest(t8Request().message, AS)];
      expect(signatureOf(requests[0])).to.not.equal(signatureOf(requests[1]));
      for (const request of requests) await verifyMessageSignature(request, edgeOptions(keyStoreOf(AS).resolveKey));
      expect(coveredRequestSignature(requests[1])).to.equal(signatureOf(requests[1]));
      expect(coveredRequestSignature(requests[0])).to.equal(signatureOf(requests[0]));
    });

    it('follow a view whose fields change after it was verified', async () => {
      const signed = signAsRequest(t8Request().message, AS);
      const view = { ...signed, headers: { ...signed.headers } };
      const headers = view.headers as Record<string, string>;
      await verifyMessageSignature(view, edgeOptions(keyStoreOf(AS).resolveKey));
      expect(coveredRequestSignature(view)).to.equal(signatureOf(signed));

      const resigned = signAsRequest(t8Request().message, AS);
      headers['signature-input'] = resigned.headers['signature-input'] as string;
      headers.signature = resigned.headers.signature as string;
      expect(coveredRequestSignature(view)).to.equal(signatureOf(resigned));
      const verified = await verifyMessageSignature(view, edgeOptions(keyStoreOf(AS).resolveKey));
      expect(verified.signatureParams).to.equal((resigned.headers['signature-input'] as string).slice('sig1='.length));

      headers.signature = signed.headers.signature as string;
      const refused = await verifyMessageSignature(view, edgeOptions(keyStoreOf(AS).resolveKey)).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refused).to.be.instanceOf(SignatureError).with.property('reason', 'SIGNATURE_INVALID');

      headers.signature = 'sig1=:not base64!:';
      expect(() => coveredRequestSignature(view)).to.throw(TypeError, 'is not a dictionary');
    });

    it('sign a response over the request signature the request carries', () => {
      const request = signAsRequest(t8Request().message, AS);
      const out = signMessage(response(), {
        label: 'sig1',
        components: RESPONSE_COMPONENTS,
        params: { created: NOW, keyid: EDGE.kid },
        key: EDGE.privateKey,
        alg: EDGE.alg,
        request,
      });
      expect(out.signatureBase).to.contain(`"signature";req;key="sig1": ${signatureOf(request)}\n`);
    });
  });

  describe('target URI origins', () => {
    const targets = [
      'https://scef.example.net:8443/3gpp-monitoring-event/v1/as-1/subscriptions?flag=1',
      'https://scef.example.net:8443/other/path',
      'https://scef.example.net:8443?only=query',
      'https://scef.example.net:8443',
      'https://SCEF.Example.NET:443/a/../b',
      'https://scef.example.net:08443/x',
      'HTTP://scef.example.net:80/x',
      'http://scef.example.net:8080/%7Ex',
      'https://1.2.3/x',
      'https://0x7f.1/x',
      'https://example.com./x',
      'https://[::1]:8443/x',
      'https://user@scef.example.net/x',
      'https://scef.example.net:/x',
      'https://exa%41mple.net/x',
    ];

    function derived(targetUri: string): string {
      const message = { method: 'GET', targetUri, headers: {} };
      return createSignatureBase(message, { components: ['@target-uri', '@authority', '@scheme'], params: { created: NOW, keyid: 'k' } }).base;
    }

    function expected(targetUri: string): string {
      const url = new URL(targetUri);
      const rest = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*(.*)$/.exec(targetUri)?.[1] ?? '';
      const target = `${url.protocol}//${url.host}${rest.startsWith('?') || rest === '' ? '/' + rest : rest}`;
      return `"@target-uri": ${target}\n"@authority": ${url.host}\n"@scheme": ${url.protocol.slice(0, -1)}\n`;
    }

    it('are what the URL parser says, the first time and every time after', () => {
      for (let round = 0; round < 3; round++) {
        for (const target of targets) expect(derived(target).startsWith(expected(target)), target).to.equal(true);
      }
    });

    it('are refused every time for an authority the URL parser refuses', () => {
      for (let round = 0; round < 3; round++) {
        for (const target of ['https://scef.example.net:99999/x', 'https://scef.example.net:8443:1/x', 'https://exa mple.net/x', 'https://:8443/x']) {
          expect(() => derived(target), target)
            .to.throw(TypeError, 'the target URI is not an absolute URI')
            .with.nested.property('cause.reason', 'COMPONENT_NOT_PRESENT');
        }
      }
    });

    it('stay right for more authorities than are kept', () => {
      for (let round = 0; round < 2; round++) {
        for (let i = 0; i < 200; i++) {
          const target = `https://host-${i}.example.net:${1000 + i}/x`;
          expect(derived(target).startsWith(expected(target)), target).to.equal(true);
        }
      }
    });
  });

  describe('nonce check', () => {
    const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const RULES = [
      { minBytes: 0, maxChars: 200 },
      { minBytes: 1, maxChars: 200 },
      { minBytes: 2, maxChars: 3 },
      { minBytes: 16, maxChars: 128 },
    ];

    /** The definition: unpadded base64url that re-encodes to itself and decodes to enough bytes. */
    function byDecoding(nonce: string, rule: { minBytes: number; maxChars: number }): boolean {
      if (nonce.length === 0 || nonce.length > rule.maxChars || !/^[A-Za-z0-9_-]+$/.test(nonce)) return false;
      const bytes = Buffer.from(nonce, 'base64url');
      return bytes.length >= rule.minBytes && bytes.toString('base64url') === nonce;
    }

    it('agrees with decoding and re-encoding on every value of up to three characters', () => {
      let accepted = 0;
      for (const a of ALPHABET) {
        for (const b of ['', ...ALPHABET]) {
          for (const c of ['', ...ALPHABET]) {
            for (const rule of RULES) {
              const expectedAnswer = byDecoding(a + b + c, rule);
              if (isAcceptableNonce(a + b + c, rule) !== expectedAnswer) expect.fail(`${a + b + c} with ${JSON.stringify(rule)}`);
              if (expectedAnswer) accepted++;
            }
          }
        }
      }
      expect(accepted).to.be.greaterThan(1_000);
    });

    it('agrees with decoding and re-encoding on random and real nonces', () => {
      for (let i = 0; i < 50_000; i++) {
        let nonce = i % 5 === 0 ? createNonce() : '';
        for (let n = i % 47; n > 0; n--) nonce += ALPHABET[Math.floor(Math.random() * 64)];
        if (i % 13 === 0) nonce += '=';
        for (const rule of RULES) {
          if (isAcceptableNonce(nonce, rule) !== byDecoding(nonce, rule)) expect.fail(`${nonce} with ${JSON.stringify(rule)}`);
        }
      }
    });
  });
});
