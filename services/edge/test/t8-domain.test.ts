import { generateKeyPairSync } from 'node:crypto';
import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import { ApiCatalogue } from '../src/domain/api-catalogue.ts';
import { encryptionKeyOf, signingKeysOf } from '../src/domain/application-server.ts';
import { bearerToken } from '../src/domain/bearer.ts';
import { ConnectionIdentities } from '../src/domain/connection-identities.ts';
import { DelegatedSigningKey } from '../src/domain/delegated-signing-key.ts';
import type { DelegatedKeyGrant } from '../src/domain/delegated-signing-key.ts';
import { requestView } from '../src/domain/message-signatures.ts';
import { RateLimiter } from '../src/domain/rate-limiter.ts';
import { isJsonContentType } from '../src/domain/request-media-type.ts';
import { acceptsJose } from '../src/domain/response-encryption.ts';
import { deny, signatureDenial } from '../src/domain/t8-denials.ts';
import { CachingTokenVerifier, TokenCache } from '../src/domain/token-cache.ts';
import type { VerifiedToken } from '../src/domain/token-cache.ts';
import { traceIdOf } from '../src/domain/trace-id.ts';

describe('edge domain: per-AS token bucket', () => {
  it('admits the burst, then refuses with a whole-second Retry-After, and refills at the rate', () => {
    let now = 1_000_000;
    const limiter = new RateLimiter({ perSecond: 2, burst: 3, now: () => now });
    expect([1, 2, 3].map(() => limiter.take('as-1').allowed)).to.deep.equal([true, true, true]);
    expect(limiter.take('as-1')).to.deep.equal({ allowed: false, retryAfterS: 1 });
    now += 500;
    expect(limiter.take('as-1').allowed).to.equal(true);
    expect(limiter.take('as-1').allowed).to.equal(false);
    // Another AS has its own bucket.
    expect(limiter.take('as-2').allowed).to.equal(true);
  });

  it('a rate-limit obligation lowers the rate and the burst, never raises them, and lapses after its TTL', () => {
    let now = 0;
    const limiter = new RateLimiter({ perSecond: 100, burst: 200, overrideTtlMs: 10_000, now: () => now });
    limiter.lower('as-1', 1000);
    expect(limiter.limitsFor('as-1')).to.deep.equal({ perSecond: 100, burst: 200 });
    limiter.lower('as-1', 2);
    expect(limiter.limitsFor('as-1')).to.deep.equal({ perSecond: 2, burst: 2 });
    expect([1, 2, 3].map(() => limiter.take('as-1').allowed)).to.deep.equal([true, true, false]);
    limiter.lower('as-1', Number.NaN);
    limiter.lower('as-1', -1);
    expect(limiter.limitsFor('as-1').perSecond).to.equal(2);
    now += 10_001;
    expect(limiter.limitsFor('as-1')).to.deep.equal({ perSecond: 100, burst: 200 });
  });
});

describe('edge domain: token verification cache', () => {
  const verified = (scsAsId: string, jti: string, expiresAt: number): VerifiedToken => ({ scsAsId, scopes: ['s'], jti, expiresAt });

  it('keys by token hash and certificate, expires at exp, evicts the least recently used, and invalidates by AS, thumbprint and jti', () => {
    let now = 1_000_000;
    const cache = new TokenCache({ maxEntries: 2, now: () => now });
    const k1 = TokenCache.keyOf('token-1', 'tp-1');
    expect(k1).not.to.include('token-1');
    expect(TokenCache.keyOf('token-1', 'tp-2')).not.to.equal(k1);
    cache.set(k1, 'tp-1', verified('as-1', 'j1', 1_010));
    cache.set(TokenCache.keyOf('token-2', 'tp-2'), 'tp-2', verified('as-2', 'j2', 1_010));
    expect(cache.get(k1)?.jti).to.equal('j1');
    cache.set(TokenCache.keyOf('token-3', 'tp-3'), 'tp-3', verified('as-3', 'j3', 1_010));
    expect(cache.get(TokenCache.keyOf('token-2', 'tp-2')), 'least recently used evicted').to.equal(undefined);
    expect(cache.invalidateJti('j1')).to.equal(1);
    expect(cache.get(k1)).to.equal(undefined);
    cache.set(k1, 'tp-1', verified('as-1', 'j1', 1_010));
    expect(cache.invalidateThumbprint('tp-3')).to.equal(1);
    expect(cache.invalidateScsAsId('as-1')).to.equal(1);
    cache.set(k1, 'tp-1', verified('as-1', 'j1', 1_010));
    now = 1_010_000;
    expect(cache.get(k1), 'expired at exp').to.equal(undefined);
  });

  it('one call per token for concurrent misses, none for hits, none cached when it fails or when an invalidation happened meanwhile', async () => {
    let calls = 0;
    let fail = false;
    let release: () => void = () => undefined;
    const verifier = new CachingTokenVerifier(new TokenCache(), async () => {
      calls++;
      if (fail) throw new AeseError('INVALID_TOKEN', 'no');
      await new Promise<void>(r => (release = r));
      return verified('as-1', 'j1', Math.floor(Date.now() / 1000) + 60);
    });
    const der = new Uint8Array([1]);
    const both = Promise.all([verifier.get('t', 'tp', der), verifier.get('t', 'tp', der)]);
    release();
    await both;
    expect(calls).to.equal(1);
    await verifier.get('t', 'tp', der);
    expect(calls).to.equal(1);
    verifier.invalidateScsAsId('as-1');
    const pending = verifier.get('t', 'tp', der);
    verifier.invalidateJti('other');
    release();
    await pending;
    const third = verifier.get('t', 'tp', der);
    release();
    await third;
    expect(calls, 'a verification that straddles an invalidation is not cached').to.equal(3);
    await verifier.get('t', 'tp', der);
    expect(calls, 'the one after it is').to.equal(3);
    fail = true;
    const err = await Promise.resolve(verifier.get('u', 'tp', der)).catch((e: unknown) => e);
    expect(err).to.be.instanceOf(AeseError);
    await Promise.resolve(verifier.get('u', 'tp', der)).catch(() => undefined);
    expect(calls).to.equal(5);
  });
});

describe('edge domain: T8 routing, credentials and media types', () => {
  const catalogue = new ApiCatalogue([
    {
      name: '3gpp-monitoring-event',
      version: 'v1',
      scope: '3gpp-monitoring-event',
      routes: [
        { method: 'GET', path: '/{scsAsId}/subscriptions' },
        { method: 'POST', path: '/{scsAsId}/subscriptions' },
        { method: 'GET', path: '/{scsAsId}/subscriptions/{subscriptionId}' },
        { method: 'DELETE', path: '/{scsAsId}/subscriptions/{subscriptionId}' },
      ],
    },
  ]);

  it('matches routes from the declared templates, with the path scsAsId; 404 and 405 otherwise; no dot or encoded-slash tricks', () => {
    const m = catalogue.match('GET', '/3gpp-monitoring-event/v1/as-1/subscriptions/abc?x=1');
    expect(m).to.deep.include({ kind: 'match', params: { scsAsId: 'as-1', subscriptionId: 'abc' } });
    expect(catalogue.match('PUT', '/3gpp-monitoring-event/v1/as-1/subscriptions/abc')).to.deep.equal({ kind: 'method-not-allowed', allowed: ['GET', 'DELETE'] });
    for (const path of [
      '/3gpp-nidd/v1/as-1/configurations',
      '/3gpp-monitoring-event/v2/as-1/subscriptions',
      '/3gpp-monitoring-event/v1/as-1%2Fsubscriptions',
      '/3gpp-monitoring-event/v1/../v1/as-1/subscriptions',
      '/3gpp-monitoring-event/v1//subscriptions',
      '/3gpp-monitoring-event/v1/%zz/subscriptions',
    ]) {
      expect(catalogue.match('GET', path).kind, path).to.equal('no-route');
    }
  });

  it('gives a target asked again the same match, per method; long and many targets still match right', () => {
    const fresh = new ApiCatalogue([{ name: '3gpp-monitoring-event', version: 'v1', scope: 's', routes: [{ method: 'GET', path: '/{scsAsId}/subscriptions/{subscriptionId}' }] }]);
    const target = '/3gpp-monitoring-event/v1/as-1/subscriptions/abc';
    const first = fresh.match('GET', target);
    expect(fresh.match('GET', target), 'kept').to.equal(first);
    expect(fresh.keptMatches).to.equal(1);
    // HTTP/2 lets a client name any method: a long one is answered but not kept.
    expect(fresh.match('M'.repeat(10_000), target)).to.deep.equal({ kind: 'method-not-allowed', allowed: ['GET'] });
    expect(fresh.keptMatches).to.equal(1);
    expect(fresh.match('DELETE', target)).to.deep.equal({ kind: 'method-not-allowed', allowed: ['GET'] });
    const long = `/3gpp-monitoring-event/v1/${'a'.repeat(150)}/subscriptions/${'x'.repeat(150)}`;
    expect(fresh.match('GET', long)).to.deep.include({ kind: 'match', params: { scsAsId: 'a'.repeat(150), subscriptionId: 'x'.repeat(150) } });
    for (let i = 0; i < 5000; i++)
      expect(fresh.match('GET', `/3gpp-monitoring-event/v1/as-${i}/subscriptions/s`)).to.deep.include({ params: { scsAsId: `as-${i}`, subscriptionId: 's' } });
    expect(fresh.match('GET', target)).to.deep.equal(first);
  });

  it('takes exactly one Bearer Authorization line; several, a malformed one or another scheme are told apart', () => {
    expect(bearerToken(['Bearer abc.def-_~+/=='])).to.deep.equal({ token: 'abc.def-_~+/==' });
    expect(bearerToken(['bearer  abc'])).to.deep.equal({ token: 'abc' });
    expect(bearerToken(undefined)).to.deep.equal({ problem: 'TOKEN_MISSING' });
    expect(bearerToken(['Basic dXNlcjpwdw=='])).to.deep.equal({ problem: 'TOKEN_MISSING' });
    expect(bearerToken(['Bearer a', 'Bearer b'])).to.deep.equal({ problem: 'TOKEN_REPEATED' });
    expect(bearerToken(['Bearer a b'])).to.deep.equal({ problem: 'TOKEN_MALFORMED' });
    expect(bearerToken(['Bearer'])).to.deep.equal({ problem: 'TOKEN_MALFORMED' });
    expect(bearerToken([`Bearer ${'a'.repeat(9000)}`])).to.deep.equal({ problem: 'TOKEN_MALFORMED' });
  });

  it('accepts JSON bodies (application/json, +json types, UTF-8 only) and recognises Accept: application/jose', () => {
    for (const ok of ['application/json', 'Application/JSON; charset=utf-8', 'application/json-patch+json', 'application/merge-patch+json'])
      expect(isJsonContentType(ok), ok).to.equal(true);
    for (const bad of [undefined, 'text/plain', 'application/json; charset=latin1', 'application/x-www-form-urlencoded', 'application/jsonx', 'multipart/form-data']) {
      expect(isJsonContentType(bad), String(bad)).to.equal(false);
    }
    expect(acceptsJose(['application/jose'])).to.equal(true);
    expect(acceptsJose(['application/json, application/jose;q=0.5'])).to.equal(true);
    expect(acceptsJose(['application/jose;q=0'])).to.equal(false);
    expect(acceptsJose(['application/json'])).to.equal(false);
    expect(acceptsJose(undefined)).to.equal(false);
  });

  it('takes the trace id from a valid traceparent only', () => {
    const id = '4bf92f3577b34da6a3ce929d0e0e4736';
    expect(traceIdOf([`00-${id}-00f067aa0ba902b7-01`])).to.equal(id);
    for (const bad of [['00-00000000000000000000000000000000-00f067aa0ba902b7-01'], ['garbage'], [`00-${id}-00f067aa0ba902b7-01`, 'x'], undefined]) {
      const got = traceIdOf(bad);
      expect(got).to.match(/^[0-9a-f]{32}$/);
      expect(got).not.to.equal(id);
    }
  });
});

describe('edge domain: AS keys, denials and the delegated signing key', () => {
  it('parses only well-formed public P-256 / Ed25519 signing keys by kid, and P-256 / X25519 encryption keys', () => {
    const ec = { ...(generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as object), kid: 'k1' };
    const ed = { ...(generateKeyPairSync('ed25519').publicKey.export({ format: 'jwk' }) as object), kid: 'k2' };
    const p384 = { ...(generateKeyPairSync('ec', { namedCurve: 'P-384' }).publicKey.export({ format: 'jwk' }) as object), kid: 'k3' };
    const priv = { ...(generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' }) as object), kid: 'k4' };
    const keys = signingKeysOf([JSON.stringify(ec), JSON.stringify(ed), JSON.stringify(p384), JSON.stringify(priv), 'not json', JSON.stringify({ ...ec, kid: 'k5', x: 'AAAA' })]);
    expect([...keys.keys()]).to.deep.equal(['k1', 'k2']);
    expect(keys.get('k1')?.alg).to.equal('ecdsa-p256-sha256');
    expect(keys.get('k2')?.alg).to.equal('ed25519');
    expect([...signingKeysOf([JSON.stringify(ec), JSON.stringify(ec)]).keys()], 'a repeated kid is ambiguous: dropped').to.deep.equal([]);
    const x25519 = { ...(generateKeyPairSync('x25519').publicKey.export({ format: 'jwk' }) as object), kid: 'e1' };
    expect(encryptionKeyOf(JSON.stringify(x25519))?.kid).to.equal('e1');
    expect(encryptionKeyOf(JSON.stringify({ ...ec, kid: 'e2' }))?.kid).to.equal('e2');
    expect(encryptionKeyOf(JSON.stringify(ed))).to.equal(undefined);
    expect(encryptionKeyOf('')).to.equal(undefined);
  });

  it('answers refusals with fixed ProblemDetails and RFC 6750 challenges; signature reasons map to coarse causes', () => {
    const missing = deny('TOKEN_MISSING');
    expect(missing.response.status).to.equal(401);
    expect(missing.response.headers['www-authenticate']).to.equal('Bearer realm="scef"');
    const scope = deny('INSUFFICIENT_SCOPE', 'INSUFFICIENT_SCOPE', { scope: 'x' });
    expect(scope.response.headers['www-authenticate']).to.equal('Bearer realm="scef", error="insufficient_scope", scope="x"');
    expect(deny('RATE_LIMITED', 'RATE_LIMITED', { retryAfterS: 3 }).response.headers['retry-after']).to.equal('3');
    expect(deny('UNAVAILABLE').response.headers['retry-after']).to.equal('1');
    expect((signatureDenial('SIGNATURE_UNKNOWN_KEY', false).response.body as { cause: string }).cause).to.equal('INVALID_SIGNATURE');
    expect((signatureDenial('SIGNATURE_SIGNATURE_INVALID', true).response.body as { cause: string }).cause).to.equal('INVALID_SIGNATURE');
    expect(signatureDenial('SIGNATURE_UNKNOWN_KEY', false).response.body).to.deep.equal(signatureDenial('SIGNATURE_SIGNATURE_INVALID', false).response.body);
    expect((signatureDenial('SIGNATURE_CREATED_TOO_OLD', true).response.body as { cause: string }).cause).to.equal('STALE_REQUEST');
    expect(signatureDenial('SIGNATURE_SIGNATURE_MISSING', true).response.headers['accept-signature']).to.include('"content-digest"');
    const nonce = signatureDenial('SIGNATURE_NONCE_INVALID', false);
    expect(nonce.response.status).to.equal(401);
    expect(nonce.response.body).to.include({ cause: 'INVALID_NONCE' });
    expect((nonce.response.body as { detail: string }).detail)
      .to.include('base64url')
      .and.include('128 bits')
      .and.include('128 characters');
    expect(nonce.response.headers['accept-signature']).to.equal('sig1=("@method" "@target-uri" "authorization");created;nonce;keyid');
  });

  it('builds the signed view from the request target as received, never a normalised URL', () => {
    for (const target of ['/3gpp-x/v1/as-1/y/%2e%2e/subs?a=%41', '/3gpp-x/v1//as-1/subs', '/3gpp-x/v1/as-1/%73ubs']) {
      expect(requestView('GET', target, 'localhost', {}).targetUri).to.equal(`https://localhost${target}`);
    }
  });

  it('renews the delegated key before it expires, never uses it in its last seconds, and fails closed without one', async () => {
    let now = 0;
    let serial = 0;
    let down = false;
    const pkcs8 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'der', type: 'pkcs8' });
    const newKids: string[] = [];
    const key = new DelegatedSigningKey({
      now: () => now,
      fetch: async (): Promise<DelegatedKeyGrant> => {
        if (down) throw new AeseError('UNAVAILABLE', 'crypto down');
        return { kid: `k${++serial}`, alg: 'ecdsa-p256-sha256', pkcs8, notAfterMs: now + 600_000 };
      },
      onNewKey: kid => newKids.push(kid),
    });
    expect(key.usable()).to.equal(undefined);
    expect((await key.current()).kid).to.equal('k1');
    now = 400_000;
    expect(key.usable()?.kid, 'still usable while renewal is not due').to.equal('k1');
    now = 490_000;
    expect(key.usable()?.kid, 'renewal starts, the current key still serves').to.equal('k1');
    await key.renew();
    expect(key.usable()?.kid).to.equal('k2');
    expect(newKids).to.deep.equal(['k1', 'k2']);
    down = true;
    now = 490_000 + 596_000;
    expect(key.usable(), 'not in its last seconds').to.equal(undefined);
    const err = await key.current().catch((e: unknown) => e);
    expect(err).to.be.instanceOf(AeseError).with.property('code', 'UNAVAILABLE');
  });

  it("gives a connection's resolved identity at once (no promise) to its later requests, until an invalidation", async () => {
    const ids = new ConnectionIdentities<string>(async () => 'as-1');
    const conn = {};
    const first = ids.get(conn, new Uint8Array());
    expect(first, 'the first request waits for the registry').to.be.instanceOf(Promise);
    expect(await first).to.equal('as-1');
    expect(ids.get(conn, new Uint8Array())).to.equal('as-1');
    expect(ids.get({}, new Uint8Array()), 'another connection asks the registry').to.be.instanceOf(Promise);
    ids.invalidateAll();
    expect(ids.get(conn, new Uint8Array()), 'asked again after an invalidation').to.be.instanceOf(Promise);
  });

  it('resolves each connection once, again after the TTL or an invalidation, and forgets failures', async () => {
    let now = 0;
    let calls = 0;
    let fail = false;
    const ids = new ConnectionIdentities<string>(
      async () => {
        calls++;
        if (fail) throw new Error('down');
        return 'as-1';
      },
      { ttlMs: 1000, now: () => now },
    );
    const conn = {};
    await ids.get(conn, new Uint8Array());
    await ids.get(conn, new Uint8Array());
    expect(calls).to.equal(1);
    ids.invalidateAll();
    await ids.get(conn, new Uint8Array());
    expect(calls).to.equal(2);
    now = 1000;
    fail = true;
    await Promise.resolve(ids.get(conn, new Uint8Array())).catch(() => undefined);
    fail = false;
    await new Promise(r => setImmediate(r));
    expect(await ids.get(conn, new Uint8Array())).to.equal('as-1');
    expect(calls).to.equal(4);
  });
});
