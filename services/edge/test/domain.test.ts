import { X509Certificate } from 'node:crypto';
import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import type { ErrorCode } from '@aese/errors';
import { createSelfSignedCa, issueCertificate } from '@aese/pki';
import { authorityHost, authorityMatchesServerName, requestAuthority } from '../src/domain/authority.js';
import { CLIENT_AUTH_EKU, clientCertificateProblem, hasKeyCertSign } from '../src/domain/client-certificate.js';
import { JwksCache, renderJwks } from '../src/domain/jwks.js';
import type { PublishedKey } from '../src/domain/jwks.js';
import { authorizationServerMetadata, parseIssuer } from '../src/domain/metadata.js';
import { isFormContentType, OAuthError, oauthErrorResponse, parseForm, parseTokenRequest, toOAuthError, tokenResponse } from '../src/domain/oauth.js';

const enc = (s: string): Buffer => Buffer.from(s, 'utf8');

function oauthCode(fn: () => unknown): [number, string] {
  try {
    fn();
  } catch (err) {
    expect(err).to.be.instanceOf(OAuthError);
    return [(err as OAuthError).status, (err as OAuthError).code];
  }
  return expect.fail('expected an OAuthError');
}

describe('edge domain: OAuth form and token request', () => {
  it('accepts form content types with at most a UTF-8 charset', () => {
    expect(isFormContentType('application/x-www-form-urlencoded')).to.equal(true);
    expect(isFormContentType('Application/X-WWW-Form-URLEncoded; charset=UTF-8')).to.equal(true);
    expect(isFormContentType('application/x-www-form-urlencoded; charset=iso-8859-1')).to.equal(false);
    expect(isFormContentType('application/json')).to.equal(false);
    expect(isFormContentType('multipart/form-data; boundary=x')).to.equal(false);
    expect(isFormContentType(undefined)).to.equal(false);
  });

  it('parses a form with + and percent escapes; refuses repeats, bad escapes, controls and non-ASCII', () => {
    const form = parseForm(enc('grant_type=client_credentials&scope=a+b%2Fc&&empty='));
    expect([...form]).to.deep.equal([
      ['grant_type', 'client_credentials'],
      ['scope', 'a b/c'],
      ['empty', ''],
    ]);
    for (const bad of ['a=1&a=2', 'a=%zz', 'a=%', 'a=%00', 'a=%0A', 'a=%C3%28', '=x', 'a=é', 'a= b', 'a=1\r\n']) {
      expect(
        oauthCode(() => parseForm(enc(bad))),
        bad,
      ).to.deep.equal([400, 'invalid_request']);
    }
    expect(oauthCode(() => parseForm(Buffer.from([0x61, 0x3d, 0xff])))).to.deep.equal([400, 'invalid_request']);
    const many = Array.from({ length: 17 }, (_, i) => `p${i}=1`).join('&');
    expect(oauthCode(() => parseForm(enc(many)))).to.deep.equal([400, 'invalid_request']);
  });

  it('requires grant_type and client_id, treats empty values as absent and ignores unknown parameters', () => {
    expect(parseTokenRequest(enc('grant_type=client_credentials&client_id=as-1&scope=x+y&foo=bar'), undefined)).to.deep.equal({
      grantType: 'client_credentials',
      clientId: 'as-1',
      scope: 'x y',
    });
    expect(parseTokenRequest(enc('grant_type=password&client_id=as-1&scope='), undefined).scope).to.equal('');
    expect(oauthCode(() => parseTokenRequest(enc('client_id=as-1'), undefined))).to.deep.equal([400, 'invalid_request']);
    expect(oauthCode(() => parseTokenRequest(enc('grant_type=client_credentials&client_id='), undefined))).to.deep.equal([400, 'invalid_request']);
  });

  it('refuses every client authentication method but tls_client_auth with invalid_client', () => {
    const body = enc('grant_type=client_credentials&client_id=as-1');
    expect(oauthCode(() => parseTokenRequest(enc('grant_type=client_credentials&client_id=as-1&client_secret=s'), undefined))).to.deep.equal([401, 'invalid_client']);
    expect(oauthCode(() => parseTokenRequest(enc('grant_type=client_credentials&client_id=as-1&client_assertion=x.y.z'), undefined))).to.deep.equal([401, 'invalid_client']);
    try {
      parseTokenRequest(body, 'Basic YTpi');
      expect.fail('expected invalid_client');
    } catch (err) {
      expect((err as OAuthError).code).to.equal('invalid_client');
      expect((err as OAuthError).headers['www-authenticate']).to.equal('Basic realm="scef"');
    }
    try {
      parseTokenRequest(body, '\u0000evil realm');
      expect.fail('expected invalid_client');
    } catch (err) {
      expect((err as OAuthError).headers).to.deep.equal({});
    }
  });

  it('maps each stable error code through one table, with fixed descriptions and no cause in the body', () => {
    const cases: [ErrorCode, number, string][] = [
      ['INVALID_CLIENT', 401, 'invalid_client'],
      ['UNSUPPORTED_GRANT_TYPE', 400, 'unsupported_grant_type'],
      ['INVALID_SCOPE', 400, 'invalid_scope'],
      ['INVALID_GRANT', 400, 'invalid_grant'],
      ['INVALID_INPUT', 400, 'invalid_request'],
      ['UNAVAILABLE', 503, 'temporarily_unavailable'],
      ['DEADLINE_EXCEEDED', 503, 'temporarily_unavailable'],
      ['PERMISSION_DENIED', 500, 'server_error'],
      ['CALLER_NOT_ALLOWED', 500, 'server_error'],
      ['INTERNAL', 500, 'server_error'],
    ];
    for (const [code, status, error] of cases) {
      const secret = 'client certificate is not registered to an SCS/AS at /secret/path';
      const res = oauthErrorResponse(toOAuthError(new AeseError(code, secret)));
      expect(res.status, code).to.equal(status);
      expect((res.body as Record<string, string>)['error']).to.equal(error);
      expect(JSON.stringify(res.body)).not.to.include('/secret/path');
      expect(res.headers['cache-control']).to.equal('no-store');
    }
    const unknown = oauthErrorResponse(toOAuthError(new Error('boom at /x.ts:1')));
    expect(unknown.status).to.equal(500);
    expect(unknown.body).to.deep.equal({ error: 'server_error', error_description: 'internal error' });
    expect(oauthErrorResponse(toOAuthError(new AeseError('UNAVAILABLE', 'x'))).headers['retry-after']).to.equal('1');
  });

  it('answers a token with exactly the RFC 6749 members and no refresh token', () => {
    const res = tokenResponse({ accessToken: 'a.b.c', expiresIn: 300, scope: 's' });
    expect(res.body).to.deep.equal({ access_token: 'a.b.c', token_type: 'Bearer', expires_in: 300, scope: 's' });
    expect(res.headers).to.include({ 'cache-control': 'no-store', pragma: 'no-cache' });
  });
});

describe('edge domain: issuer and metadata', () => {
  it('accepts an https issuer without path, query or fragment, and builds every URL from it', () => {
    expect(parseIssuer('https://scef.example.org')).to.equal('https://scef.example.org');
    expect(parseIssuer('https://localhost:8443')).to.equal('https://localhost:8443');
    for (const bad of ['http://scef.example.org', 'https://scef.example.org/t8', 'https://u:p@scef.example.org', 'https://x?y', 'https://x#y', 'scef']) {
      expect(() => parseIssuer(bad, 'AESE_ISSUER'), bad).to.throw(AeseError, /AESE_ISSUER/);
    }
    const meta = authorizationServerMetadata('https://localhost:8443');
    expect(meta).to.include({ issuer: 'https://localhost:8443', token_endpoint: 'https://localhost:8443/oauth2/token', jwks_uri: 'https://localhost:8443/.well-known/jwks.json' });
    expect(meta['token_endpoint_auth_methods_supported']).to.deep.equal(['tls_client_auth']);
    expect(meta['tls_client_certificate_bound_access_tokens']).to.equal(true);
  });
});

describe('edge domain: authority and SNI', () => {
  it('extracts the host of an authority and refuses anything but host[:port]', () => {
    expect(authorityHost('LocalHost:8443')).to.equal('localhost');
    expect(authorityHost('scef.example.org.')).to.equal('scef.example.org');
    for (const bad of ['', 'user@host', 'host:port', 'host:99999999', '[::1]:443', 'a b', 'host/path']) expect(authorityHost(bad), bad).to.equal(undefined);
  });

  it('matches only when the authority equals the server name, and never without SNI', () => {
    expect(authorityMatchesServerName('localhost:8443', 'localhost')).to.equal(true);
    expect(authorityMatchesServerName('LOCALHOST.', 'localhost')).to.equal(true);
    expect(authorityMatchesServerName('other:8443', 'localhost')).to.equal(false);
    expect(authorityMatchesServerName('localhost', false)).to.equal(false);
    expect(authorityMatchesServerName('localhost', '')).to.equal(false);
    expect(authorityMatchesServerName('', 'localhost')).to.equal(false);
  });

  it('a request names exactly one authority: one Host line, agreeing with :authority and an absolute target', () => {
    const fields = (hostLines: string[], pseudoAuthorities: string[] = [], target = '/x') => ({ hostLines, pseudoAuthorities, target });
    // Accepted: one Host; :authority alone; both naming the same origin (case, default port).
    expect(requestAuthority(fields(['localhost']))).to.deep.equal({ ok: true, authority: 'localhost' });
    expect(requestAuthority(fields([], ['localhost:8443']))).to.deep.equal({ ok: true, authority: 'localhost:8443' });
    expect(requestAuthority(fields(['LOCALHOST:443'], ['localhost']))).to.deep.equal({ ok: true, authority: 'localhost' });
    expect(requestAuthority(fields(['localhost'], [], 'https://LocalHost:443/x'))).to.deep.equal({ ok: true, authority: 'localhost' });
    // Refused.
    expect(requestAuthority(fields([]))).to.deep.equal({ ok: false, fault: 'HOST_MISSING' });
    expect(requestAuthority(fields(['localhost', 'localhost']))).to.deep.equal({ ok: false, fault: 'HOST_REPEATED' });
    expect(requestAuthority(fields(['localhost', 'other.example']))).to.deep.equal({ ok: false, fault: 'HOST_REPEATED' });
    expect(requestAuthority(fields([], ['localhost', 'localhost']))).to.deep.equal({ ok: false, fault: 'HOST_REPEATED' });
    for (const host of ['other.example', 'localhost:8443', 'user@localhost']) {
      expect(requestAuthority(fields([host], ['localhost'])), host).to.deep.equal({ ok: false, fault: 'HOST_AUTHORITY_CONFLICT' });
    }
    for (const target of ['https://other.example/x', 'https://localhost:8443/x', 'https://user@localhost/x']) {
      expect(requestAuthority(fields(['localhost'], [], target)), target).to.deep.equal({ ok: false, fault: 'HOST_TARGET_CONFLICT' });
    }
  });
});

describe('edge domain: client certificate second look', () => {
  let ca: Awaited<ReturnType<typeof createSelfSignedCa>>;
  before(async () => {
    ca = await createSelfSignedCa('test CA');
  });
  const facts = (pem: string) => {
    const c = new X509Certificate(pem);
    return { raw: c.raw, ca: c.ca, ext_key_usage: c.keyUsage ?? [] };
  };

  it('accepts a clientAuth leaf and refuses CA, keyCertSign and EKU-less leaves', async () => {
    const good = await issueCertificate(ca, { subject: 'CN=a', extendedKeyUsages: ['clientAuth'] });
    expect(clientCertificateProblem(facts(good.certPem))).to.equal(undefined);
    expect(hasKeyCertSign(new X509Certificate(good.certPem).raw)).to.equal(false);
    const kcs = await issueCertificate(ca, { subject: 'CN=a', extendedKeyUsages: ['clientAuth'], keyUsages: ['digitalSignature', 'keyCertSign'] });
    expect(clientCertificateProblem(facts(kcs.certPem))).to.equal('key-cert-sign');
    const caLeaf = await issueCertificate(ca, { subject: 'CN=a', extendedKeyUsages: ['clientAuth'], isCa: true });
    expect(clientCertificateProblem(facts(caLeaf.certPem))).to.equal('ca-certificate');
    const server = await issueCertificate(ca, { subject: 'CN=a', extendedKeyUsages: ['serverAuth'] });
    expect(clientCertificateProblem(facts(server.certPem))).to.equal('no-client-auth-eku');
    const none = await issueCertificate(ca, { subject: 'CN=a' });
    expect(clientCertificateProblem({ ...facts(none.certPem), ext_key_usage: undefined })).to.equal('no-client-auth-eku');
    expect(clientCertificateProblem({})).to.equal('missing');
    expect(clientCertificateProblem({ raw: Buffer.from([0x30, 0x05, 0x01]), ext_key_usage: [CLIENT_AUTH_EKU] })).to.equal('malformed');
    expect(hasKeyCertSign(new X509Certificate(ca.certPem).raw)).to.equal(true);
  });
});

describe('edge domain: JWKS', () => {
  const es256: PublishedKey = {
    kid: 'tok-1',
    alg: 'ES256',
    purpose: 'access-token',
    jwkJson: JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'xx', y: 'yy', d: 'PRIVATE', kid: 'tok-1' }),
  };
  const ed: PublishedKey = { kid: 'msg-1', alg: 'EdDSA', purpose: 'message-signing', jwkJson: JSON.stringify({ kty: 'OKP', crv: 'Ed25519', x: 'xx' }) };
  const event: PublishedKey = { kid: 'evt-1', alg: 'ES256', purpose: 'event-signing', jwkJson: JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }) };

  it('publishes token and message keys with kid/use/alg and public members only; never event keys', () => {
    const broken: PublishedKey = { kid: 'bad', alg: 'ES256', purpose: 'access-token', jwkJson: '{not json' };
    const mismatched: PublishedKey = { kid: 'mm', alg: 'EdDSA', purpose: 'access-token', jwkJson: JSON.stringify({ kty: 'EC', crv: 'P-256', x: 'a', y: 'b' }) };
    expect(renderJwks([es256, ed, event, broken, mismatched, es256])).to.deep.equal({
      keys: [
        { kty: 'EC', crv: 'P-256', x: 'xx', y: 'yy', kid: 'tok-1', use: 'sig', alg: 'ES256' },
        { kty: 'OKP', crv: 'Ed25519', x: 'xx', kid: 'msg-1', use: 'sig', alg: 'EdDSA' },
      ],
    });
  });

  it('caches for the TTL, shares one fetch between concurrent misses, serves a stale copy only within the bound', async () => {
    let now = 1_000_000;
    let calls = 0;
    let fail = false;
    const cache = new JwksCache({
      ttlMs: 10_000,
      maxStaleMs: 60_000,
      now: () => now,
      fetch: async () => {
        calls++;
        if (fail) throw new AeseError('UNAVAILABLE', 'crypto down');
        return [es256];
      },
    });
    const [a, b] = await Promise.all([cache.get(), cache.get()]);
    expect(calls).to.equal(1);
    expect(a).to.equal(b);
    now += 9_999;
    await cache.get();
    expect(calls).to.equal(1);
    now += 2;
    fail = true;
    expect((await cache.get()).keys[0]['kid']).to.equal('tok-1');
    expect(calls).to.equal(2);
    now += 60_000;
    let caught: unknown;
    try {
      await cache.get();
    } catch (err) {
      caught = err;
    }
    expect(caught).to.be.instanceOf(AeseError);
    expect((caught as AeseError).code).to.equal('UNAVAILABLE');
  });
});
