import { createHash, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect as http2Connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { connect as tlsConnect } from 'node:tls';
import { Writable } from 'node:stream';
import { expect } from 'chai';
import * as jose from 'jose';
import * as oauth from 'oauth4webapi';
import type { Agent } from 'undici';
import { startEdgeService } from '@aese/edge-service';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import { createSelfSignedCa, issueAsClientCertificate, issueCertificate, spiffeId } from '@aese/pki';
import type { KeyPairPem } from '@aese/pki';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { T8_SCOPES } from '@aese/t8-catalog';
import { asDispatcher, asFetch, EDGE_HOSTNAME, edgeRequest, edgeRequestH2, onboardAs, operatorAuthClient, t8CaPem } from './support/as-client.js';
import type { AsIdentity, EdgeAnswer, EdgeRequestOptions } from './support/as-client.js';
import { startTestMesh } from './support/mesh.js';
import type { TestMesh } from './support/mesh.js';

/**
 * The issuer both the edge and the authentication service are given. It is port-less, as for an
 * edge behind a front on 443; the tests' dispatcher dials the edge's ephemeral port instead.
 */
const ISSUER = `https://${EDGE_HOSTNAME}`;
const MONITORING = '3gpp-monitoring-event';
const QOS = '3gpp-as-session-with-qos';
/** A scope that is no T8 API. */
const UNKNOWN_SCOPE = '3gpp-unknown-api';
const TOKEN_PATH = '/oauth2/token';
const JWKS_PATH = '/.well-known/jwks.json';
const METADATA_PATH = '/.well-known/oauth-authorization-server';
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
/** A stack trace line or an exception name in a body would be a leak. */
const STACK_TRACE = /\n\s+at |Error:|node:internal|\.ts:\d+/;

/** RFC 8705 `x5t#S256`, computed here independently of the code under test. */
function x5tS256(certPem: string): string {
  return createHash('sha256').update(new X509Certificate(certPem).raw).digest('base64url');
}

function parseJson(answer: EdgeAnswer): Record<string, unknown> {
  return JSON.parse(answer.body) as Record<string, unknown>;
}

/** Rejects unless the request fails without any HTTP response; returns the error. */
async function expectNoResponse(pending: Promise<EdgeAnswer>): Promise<Error & { code?: string }> {
  let answer: EdgeAnswer | undefined;
  try {
    answer = await pending;
  } catch (err) {
    expect((err as Error).message, 'the connection failed, it did not hang').not.to.equal('request timed out');
    return err as Error & { code?: string };
  }
  expect.fail(`expected no HTTP response, got ${answer.status}`);
}

function expectProblem(answer: EdgeAnswer, status: number): Record<string, unknown> {
  expect(answer.status).to.equal(status);
  expect(answer.headers['content-type']).to.equal('application/problem+json');
  const body = parseJson(answer);
  expect(body['status']).to.equal(status);
  expect(body['title']).to.be.a('string').and.not.be.empty;
  expect(body['detail']).to.be.a('string').and.not.be.empty;
  expect(answer.body).not.to.match(STACK_TRACE);
  return body;
}

function expectOAuthError(answer: EdgeAnswer, status: number, error: string): Record<string, unknown> {
  expect(answer.status, answer.body).to.equal(status);
  expect(answer.headers['content-type']).to.equal('application/json');
  expect(answer.headers['cache-control']).to.equal('no-store');
  const body = parseJson(answer);
  expect(body['error']).to.equal(error);
  expect(body['error_description']).to.be.a('string');
  expect(body).not.to.have.property('access_token');
  expect(answer.body).not.to.match(STACK_TRACE);
  return body;
}

describe('edge: T8 transport and OAuth 2.0 token endpoint (T8 profile sections 1-3, 6)', function () {
  this.timeout(30_000);

  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let port: number;
  let ca: string;
  let alpha: AsIdentity;
  let beta: AsIdentity;
  let suspended: AsIdentity;
  let unregistered: KeyPairPem;
  let dispatcher: Agent;
  /** Every access token issued in this file, for the log scan at the end. */
  const issuedTokens: string[] = [];
  /** Every AS private key used in this file, for the log scan at the end. */
  const privateKeys: string[] = [];

  const req = (o: Omit<EdgeRequestOptions, 'port' | 'ca'>): Promise<EdgeAnswer> => edgeRequest({ port, ca, ...o });
  const reqH2 = (o: Omit<EdgeRequestOptions, 'port' | 'ca'>): Promise<EdgeAnswer> => edgeRequestH2({ port, ca, ...o });
  /** Writes raw bytes on an HTTP/1.1 connection with alpha's certificate; returns all it gets back. */
  const rawExchange = (bytes: string, toPort = port): Promise<string> =>
    new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = tlsConnect({ host: '127.0.0.1', port: toPort, servername: EDGE_HOSTNAME, ca, cert: alpha.certPem, key: alpha.keyPem, ALPNProtocols: ['http/1.1'] }, () =>
        socket.write(bytes),
      );
      socket.setTimeout(5_000, () => socket.destroy(new Error('timed out')));
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });

  /** A token request with a form body; a success is checked and its token recorded. */
  const tokenRequest = async (client: KeyPairPem, form: string | Buffer, h2 = false): Promise<EdgeAnswer> => {
    const answer = await (h2 ? reqH2 : req)({ client, method: 'POST', path: TOKEN_PATH, headers: FORM, body: form });
    if (answer.status === 200) {
      const body = parseJson(answer);
      // RFC 6749 section 4.4.3: no refresh token for the client-credentials grant, ever.
      expect(Object.keys(body).sort()).to.deep.equal(['access_token', 'expires_in', 'scope', 'token_type']);
      expect(body['token_type']).to.equal('Bearer');
      expect(answer.headers['cache-control']).to.equal('no-store');
      issuedTokens.push(body['access_token'] as string);
    }
    return answer;
  };
  const grant = (scsAsId: string, scope = MONITORING): string => `grant_type=client_credentials&client_id=${scsAsId}&scope=${scope}`;
  const expectToken = async (client: KeyPairPem, form: string, h2 = false): Promise<void> => {
    const answer = await tokenRequest(client, form, h2);
    expect(answer.status, answer.body).to.equal(200);
  };

  before(async function () {
    this.timeout(60_000);
    mesh = await startTestMesh({ edge: startEdgeService, extraEnv: { AESE_ISSUER: ISSUER } });
    port = mesh.ports['edge']!;
    ca = t8CaPem(mesh);
    operator = operatorAuthClient(mesh);
    alpha = await onboardAs(mesh, operator, 'as-alpha', [MONITORING, QOS]);
    beta = await onboardAs(mesh, operator, 'as-beta', [MONITORING]);
    suspended = await onboardAs(mesh, operator, 'as-suspended', [MONITORING]);
    await operator.suspendApplicationServer({ scsAsId: 'as-suspended' });
    unregistered = await issueAsClientCertificate(mesh.stateDir, mesh.trustDomain, 'as-unregistered');
    privateKeys.push(alpha.keyPem, beta.keyPem, suspended.keyPem, unregistered.keyPem);
    dispatcher = asDispatcher(port, alpha, ca);
  });

  after(async function () {
    this.timeout(30_000);
    await dispatcher?.close();
    operator?.close();
    await mesh?.stop();
  });

  describe('an AS with a standard OAuth client (oauth4webapi, tls_client_auth)', () => {
    it('discovers the edge, gets a certificate-bound at+jwt token and verifies it against the published JWKS', async () => {
      const customFetch = asFetch(dispatcher);
      const issuer = new URL(ISSUER);
      const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.customFetch]: customFetch }));
      expect(as.issuer).to.equal(ISSUER);
      expect(as.token_endpoint).to.equal(`${ISSUER}${TOKEN_PATH}`);
      expect(as.jwks_uri).to.equal(`${ISSUER}${JWKS_PATH}`);
      expect(as.token_endpoint_auth_methods_supported).to.deep.equal(['tls_client_auth']);
      expect(as.tls_client_certificate_bound_access_tokens).to.equal(true);
      expect(as.grant_types_supported).to.deep.equal(['client_credentials']);
      expect(as.scopes_supported).to.deep.equal([...T8_SCOPES]);

      const client: oauth.Client = { client_id: alpha.scsAsId };
      const response = await oauth.clientCredentialsGrantRequest(as, client, oauth.TlsClientAuth(), new URLSearchParams({ scope: MONITORING }), {
        [oauth.customFetch]: customFetch,
      });
      expect(response.status).to.equal(200);
      expect(response.headers.get('cache-control')).to.equal('no-store');
      const result = await oauth.processClientCredentialsResponse(as, client, response);
      issuedTokens.push(result.access_token);
      expect(result.token_type).to.equal('bearer');
      expect(result.scope).to.equal(MONITORING);
      expect(result.expires_in).to.be.within(1, 600);
      expect(result).not.to.have.property('refresh_token');

      const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri!), { [jose.customFetch]: customFetch });
      const { payload, protectedHeader } = await jose.jwtVerify(result.access_token, jwks, {
        issuer: ISSUER,
        audience: ISSUER,
        typ: 'at+jwt',
        algorithms: ['ES256', 'EdDSA'],
      });
      expect(protectedHeader.typ).to.equal('at+jwt');
      expect(payload.sub).to.equal(alpha.scsAsId);
      expect(payload['client_id']).to.equal(alpha.scsAsId);
      expect(payload['scope']).to.equal(MONITORING);
      expect(payload.jti).to.be.a('string').and.not.be.empty;
      expect(payload.exp! - payload.iat!).to.be.within(1, 600);
      const cnf = payload['cnf'] as Record<string, unknown>;
      expect(cnf['x5t#S256']).to.equal(x5tS256(alpha.certPem));
      // Control: the binding is to this certificate, not to any AS certificate.
      expect(cnf['x5t#S256']).not.to.equal(x5tS256(beta.certPem));
    });

    it('reports an OAuth error to the same client as a typed error (invalid_scope), and succeeds with a granted scope', async () => {
      const customFetch = asFetch(dispatcher);
      const issuer = new URL(ISSUER);
      const as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.customFetch]: customFetch }));
      const client: oauth.Client = { client_id: alpha.scsAsId };
      const denied = await oauth.clientCredentialsGrantRequest(as, client, oauth.TlsClientAuth(), { scope: UNKNOWN_SCOPE }, { [oauth.customFetch]: customFetch });
      let caught: unknown;
      try {
        await oauth.processClientCredentialsResponse(as, client, denied);
      } catch (err) {
        caught = err;
      }
      expect(caught).to.be.instanceOf(oauth.ResponseBodyError);
      expect((caught as oauth.ResponseBodyError).error).to.equal('invalid_scope');
      expect((caught as oauth.ResponseBodyError).status).to.equal(400);

      const granted = await oauth.clientCredentialsGrantRequest(as, client, oauth.TlsClientAuth(), { scope: `${MONITORING} ${QOS}` }, { [oauth.customFetch]: customFetch });
      const result = await oauth.processClientCredentialsResponse(as, client, granted);
      issuedTokens.push(result.access_token);
      expect(result.scope).to.equal(`${MONITORING} ${QOS}`);
    });

    it('publishes the token and message signing keys with kid/use/alg, public members only, cacheable for 60 s', async () => {
      const answer = await req({ client: alpha, path: JWKS_PATH });
      expect(answer.status).to.equal(200);
      expect(answer.headers['cache-control']).to.equal('max-age=60');
      const { keys } = parseJson(answer) as { keys: Record<string, string>[] };
      expect(keys).not.to.be.empty;
      for (const k of keys) {
        expect(k['kid']).to.be.a('string').and.not.be.empty;
        expect(k['use']).to.equal('sig');
        expect(['ES256', 'EdDSA']).to.include(k['alg']);
        expect(k).not.to.have.any.keys('d', 'p', 'q', 'dp', 'dq', 'qi', 'k');
      }
      const crypto = createMeshClient(CryptoServiceClient, {
        address: mesh.env['CRYPTO_ADDR'],
        tls: mesh.tls('operator'),
        serverId: mesh.id('crypto'),
      });
      try {
        const published = (await crypto.getJwks({})).keys;
        const outward = published.filter(k => k.purpose === KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN || k.purpose === KeyPurpose.KEY_PURPOSE_MESSAGE_SIGNING);
        const internal = published.filter(k => k.purpose === KeyPurpose.KEY_PURPOSE_EVENT_SIGNING);
        expect(keys.map(k => k['kid']).sort()).to.deep.equal(outward.map(k => k.kid).sort());
        for (const k of internal) expect(keys.map(j => j['kid'])).not.to.include(k.kid);
      } finally {
        crypto.close();
      }
    });

    it('advertises exactly the T8 catalogue scopes and the signature algorithms', async () => {
      const meta = await req({ client: alpha, path: METADATA_PATH });
      expect(meta.status).to.equal(200);
      expect(meta.headers['content-type']).to.equal('application/json');
      expect(parseJson(meta)['scopes_supported']).to.deep.equal([...T8_SCOPES]);
      expect(parseJson(meta)['signing_alg_values_supported']).to.deep.equal(['ES256', 'EdDSA']);
    });

    it('serves HTTP/2 (ALPN h2) and HTTP/1.1 alike', async () => {
      const h2 = await tokenRequest(alpha, grant(alpha.scsAsId), true);
      expect(h2.status, h2.body).to.equal(200);
      expect(h2.alpn).to.equal('h2');
      const h1 = await tokenRequest(alpha, grant(alpha.scsAsId));
      expect(h1.status, h1.body).to.equal(200);
      expect(h1.alpn).to.equal('http/1.1');
    });
  });

  describe('handshake: only AS-CA client certificates fit for client authentication, TLS 1.3 only', () => {
    type Client = () => Promise<{ client?: KeyPairPem; maxVersion?: 'TLSv1.2'; expect?: RegExp }>;
    const asCa = (): KeyPairPem => ({ certPem: readFileSync(mesh.layout.asCa.cert, 'utf8'), keyPem: readFileSync(mesh.layout.asCa.key, 'utf8') });
    const uri = (): string => spiffeId(mesh.trustDomain, 'as', 'as-alpha');
    const cases: Record<string, Client> = {
      'no client certificate': async () => ({}),
      'a mesh CA certificate (a service identity)': async () => {
        const svc = mesh.tls('authentication');
        return { client: { certPem: svc.certPem, keyPem: svc.keyPem } };
      },
      'a leaf from a foreign self-signed CA': async () => {
        const rogue = await createSelfSignedCa('rogue CA');
        return { client: await issueCertificate(rogue, { subject: 'CN=as-alpha', uriSans: [uri()], extendedKeyUsages: ['clientAuth'] }) };
      },
      'an expired AS-CA certificate': async () => ({
        client: await issueCertificate(asCa(), {
          subject: 'CN=as-alpha',
          uriSans: [uri()],
          extendedKeyUsages: ['clientAuth'],
          notAfter: new Date(Date.now() - 3_600_000),
        }),
      }),
      'a not-yet-valid AS-CA certificate': async () => ({
        client: await issueCertificate(asCa(), {
          subject: 'CN=as-alpha',
          uriSans: [uri()],
          extendedKeyUsages: ['clientAuth'],
          notBefore: new Date(Date.now() + 3_600_000),
          notAfter: new Date(Date.now() + 7_200_000),
        }),
      }),
      'a CA certificate (CA:TRUE) issued by the AS CA used as a leaf': async () => ({
        client: await issueCertificate(asCa(), {
          subject: 'CN=as-alpha',
          uriSans: [uri()],
          extendedKeyUsages: ['clientAuth'],
          isCa: true,
          keyUsages: ['digitalSignature', 'keyCertSign', 'cRLSign'],
        }),
      }),
      'a leaf with the keyCertSign key usage': async () => ({
        client: await issueCertificate(asCa(), {
          subject: 'CN=as-alpha',
          uriSans: [uri()],
          extendedKeyUsages: ['clientAuth'],
          keyUsages: ['digitalSignature', 'keyCertSign'],
        }),
      }),
      'a serverAuth-only EKU': async () => ({
        client: await issueCertificate(asCa(), { subject: 'CN=as-alpha', uriSans: [uri()], extendedKeyUsages: ['serverAuth'] }),
      }),
      'no EKU at all ("any purpose" to OpenSSL)': async () => ({
        client: await issueCertificate(asCa(), { subject: 'CN=as-alpha', uriSans: [uri()] }),
      }),
      'a TLS 1.2 client with a valid certificate (alert protocol_version)': async () => ({
        client: alpha,
        maxVersion: 'TLSv1.2',
        expect: /protocol version/,
      }),
    };

    for (const [name, make] of Object.entries(cases)) {
      it(`HTTP/1.1: refuses ${name}; a valid certificate succeeds`, async () => {
        const c = await make();
        if (c.client) privateKeys.push(c.client.keyPem);
        const err = await expectNoResponse(req({ ...(c.client ? { client: c.client } : {}), ...(c.maxVersion ? { maxVersion: c.maxVersion } : {}), path: JWKS_PATH }));
        if (c.expect) expect(err.message).to.match(c.expect);
        const ok = await req({ client: alpha, path: JWKS_PATH });
        expect(ok.status).to.equal(200);
      });
    }

    it('HTTP/2: refuses no certificate, a foreign CA, a CA leaf and a serverAuth-only leaf; a valid certificate succeeds', async () => {
      for (const name of [
        'no client certificate',
        'a leaf from a foreign self-signed CA',
        'a CA certificate (CA:TRUE) issued by the AS CA used as a leaf',
        'a serverAuth-only EKU',
      ]) {
        const c = await cases[name]();
        await expectNoResponse(reqH2({ ...(c.client ? { client: c.client } : {}), path: JWKS_PATH }));
      }
      const ok = await reqH2({ client: alpha, path: JWKS_PATH });
      expect(ok.status).to.equal(200);
      expect(ok.alpn).to.equal('h2');
    });

    it('offers no TLS session resumption (no tickets, so no 0-RTT); a fresh full handshake succeeds', async () => {
      const connectOnce = (session?: Buffer): Promise<{ reused: boolean; session: Buffer | undefined }> =>
        new Promise((resolve, reject) => {
          let got: Buffer | undefined;
          let reused = false;
          const socket = tlsConnect(
            { host: '127.0.0.1', port, servername: EDGE_HOSTNAME, ca, cert: alpha.certPem, key: alpha.keyPem, ALPNProtocols: ['http/1.1'], ...(session ? { session } : {}) },
            () => {
              reused = socket.isSessionReused();
              socket.write(`GET ${JWKS_PATH} HTTP/1.1\r\nHost: ${EDGE_HOSTNAME}\r\nConnection: close\r\n\r\n`);
            },
          );
          socket.on('session', (s: Buffer) => (got = s));
          socket.on('data', () => undefined);
          socket.on('error', reject);
          socket.on('close', () => resolve({ reused, session: got }));
        });
      const first = await connectOnce();
      expect(first.reused).to.equal(false);
      if (first.session) {
        const second = await connectOnce(first.session);
        expect(second.reused, 'a saved session must not resume').to.equal(false);
      }
    });
  });

  describe('token endpoint: RFC 6749 errors, fail closed, no oracle', () => {
    it('an AS-CA certificate never registered gets 401 invalid_client; a registered one gets a token', async () => {
      expectOAuthError(await tokenRequest(unregistered, grant('as-unregistered')), 401, 'invalid_client');
      await expectToken(alpha, grant(alpha.scsAsId));
    });

    it('a suspended AS gets 401 invalid_client; an active one gets a token', async () => {
      expectOAuthError(await tokenRequest(suspended, grant(suspended.scsAsId)), 401, 'invalid_client');
      await expectToken(alpha, grant(alpha.scsAsId));
    });

    it("a client_id other than the certificate's AS gets 401 invalid_client; the matching one gets a token", async () => {
      expectOAuthError(await tokenRequest(alpha, grant(beta.scsAsId, MONITORING)), 401, 'invalid_client');
      expectOAuthError(await tokenRequest(beta, grant(alpha.scsAsId)), 401, 'invalid_client');
      await expectToken(beta, grant(beta.scsAsId, MONITORING));
    });

    it('the three invalid_client answers are identical (no oracle on which check failed)', async () => {
      const unknown = expectOAuthError(await tokenRequest(unregistered, grant('as-unregistered')), 401, 'invalid_client');
      const susp = expectOAuthError(await tokenRequest(suspended, grant(suspended.scsAsId)), 401, 'invalid_client');
      const substituted = expectOAuthError(await tokenRequest(alpha, grant(beta.scsAsId, MONITORING)), 401, 'invalid_client');
      expect(susp).to.deep.equal(unknown);
      expect(substituted).to.deep.equal(unknown);
      await expectToken(alpha, grant(alpha.scsAsId));
    });

    it('authorization_code and password grants get 400 unsupported_grant_type; client_credentials succeeds', async () => {
      expectOAuthError(
        await tokenRequest(alpha, `grant_type=authorization_code&client_id=${alpha.scsAsId}&code=abc&redirect_uri=https%3A%2F%2Fas.example%2Fcb`),
        400,
        'unsupported_grant_type',
      );
      expectOAuthError(await tokenRequest(alpha, `grant_type=password&client_id=${alpha.scsAsId}&username=u&password=p`), 400, 'unsupported_grant_type');
      expectOAuthError(await tokenRequest(alpha, `grant_type=refresh_token&client_id=${alpha.scsAsId}&refresh_token=x`), 400, 'unsupported_grant_type');
      await expectToken(alpha, grant(alpha.scsAsId));
    });

    it('an ungranted or unknown scope gets 400 invalid_scope; granted scopes (or none: all granted) succeed', async () => {
      expectOAuthError(await tokenRequest(alpha, grant(alpha.scsAsId, UNKNOWN_SCOPE)), 400, 'invalid_scope');
      expectOAuthError(await tokenRequest(alpha, grant(alpha.scsAsId, `${MONITORING}+${UNKNOWN_SCOPE}`)), 400, 'invalid_scope');
      expectOAuthError(await tokenRequest(alpha, grant(alpha.scsAsId, '3gpp-no-such-api')), 400, 'invalid_scope');
      await expectToken(alpha, grant(alpha.scsAsId, `${MONITORING}+${QOS}`));
      const all = await tokenRequest(alpha, `grant_type=client_credentials&client_id=${alpha.scsAsId}`);
      expect(all.status).to.equal(200);
      expect((parseJson(all)['scope'] as string).split(' ').sort()).to.deep.equal([MONITORING, QOS].sort());
    });

    it('other client authentication methods (client_secret, Basic) get 401 invalid_client; tls_client_auth succeeds', async () => {
      expectOAuthError(await tokenRequest(alpha, `${grant(alpha.scsAsId)}&client_secret=s3cr3t`), 401, 'invalid_client');
      const basic = await req({
        client: alpha,
        method: 'POST',
        path: TOKEN_PATH,
        headers: { ...FORM, authorization: `Basic ${Buffer.from(`${alpha.scsAsId}:s3cr3t`).toString('base64')}` },
        body: grant(alpha.scsAsId),
      });
      expectOAuthError(basic, 401, 'invalid_client');
      expect(basic.headers['www-authenticate']).to.match(/^Basic /);
      await expectToken(alpha, grant(alpha.scsAsId));
    });

    it('a missing grant_type or client_id gets 400 invalid_request; a complete request succeeds', async () => {
      expectOAuthError(await tokenRequest(alpha, `client_id=${alpha.scsAsId}&scope=${MONITORING}`), 400, 'invalid_request');
      expectOAuthError(await tokenRequest(alpha, `grant_type=client_credentials&scope=${MONITORING}`), 400, 'invalid_request');
      expectOAuthError(await tokenRequest(alpha, `grant_type=client_credentials&client_id=&scope=${MONITORING}`), 400, 'invalid_request');
      await expectToken(alpha, grant(alpha.scsAsId));
    });
  });

  describe('authority: Host / :authority must equal the TLS server name', () => {
    it('HTTP/1.1: a Host other than the SNI, or no SNI, gets 421 ProblemDetails; a matching Host succeeds', async () => {
      expectProblem(await req({ client: alpha, path: JWKS_PATH, headers: { host: `other.example:${port}` } }), 421);
      expectProblem(await req({ client: alpha, servername: null, path: JWKS_PATH }), 421);
      expectProblem(await req({ client: alpha, servername: 'other.example', path: JWKS_PATH }), 421);
      const ok = await req({ client: alpha, path: JWKS_PATH, headers: { host: `LOCALHOST:${port}` } });
      expect(ok.status).to.equal(200);
    });

    it('HTTP/2: an :authority other than the SNI, or no SNI, gets 421 (a Host other than :authority 400); a matching one succeeds', async () => {
      expectProblem(await reqH2({ client: alpha, path: JWKS_PATH, headers: { ':authority': `other.example:${port}` } }), 421);
      expectProblem(await reqH2({ client: alpha, servername: null, path: JWKS_PATH }), 421);
      // A Host that disagrees with :authority is malformed (RFC 9113 section 8.3.1), whatever the SNI.
      expectProblem(await reqH2({ client: alpha, path: JWKS_PATH, headers: { host: 'other.example' } }), 400);
      const ok = await reqH2({ client: alpha, path: JWKS_PATH });
      expect(ok.status).to.equal(200);
    });
  });

  describe('bad input: clear errors, no stack traces, the edge keeps serving', () => {
    it('a token request that is not a form gets 415; a form succeeds', async () => {
      const json = await req({
        client: alpha,
        method: 'POST',
        path: TOKEN_PATH,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', client_id: alpha.scsAsId }),
      });
      expectProblem(json, 415);
      expectProblem(await req({ client: alpha, method: 'POST', path: TOKEN_PATH, body: grant(alpha.scsAsId) }), 415);
      expectProblem(
        await req({
          client: alpha,
          method: 'POST',
          path: TOKEN_PATH,
          headers: { 'content-type': 'application/x-www-form-urlencoded; charset=latin1' },
          body: grant(alpha.scsAsId),
        }),
        415,
      );
      await expectToken(alpha, grant(alpha.scsAsId));
    });

    it('a body over 4 KiB gets 413 (declared or chunked, HTTP/1.1 and HTTP/2); a small one succeeds', async () => {
      const big = `${grant(alpha.scsAsId)}&pad=${'a'.repeat(64 * 1024)}`;
      expectProblem(await tokenRequest(alpha, big), 413);
      expectProblem(
        await req({
          client: alpha,
          method: 'POST',
          path: TOKEN_PATH,
          headers: { ...FORM, 'transfer-encoding': 'chunked' },
          body: `${grant(alpha.scsAsId)}&pad=${'a'.repeat(8 * 1024)}`,
        }),
        413,
      );
      expectProblem(await tokenRequest(alpha, big, true), 413);
      await expectToken(alpha, grant(alpha.scsAsId));
      await expectToken(alpha, grant(alpha.scsAsId), true);
    });

    it('a malformed form or a repeated parameter gets 400 invalid_request; a well-formed one succeeds', async () => {
      for (const body of [
        `${grant(alpha.scsAsId)}&grant_type=client_credentials`,
        `${grant(alpha.scsAsId)}&scope=${QOS}`,
        `grant_type=client_credentials&client_id=${alpha.scsAsId}&client_id=${alpha.scsAsId}`,
        `grant_type=client%zzcredentials&client_id=${alpha.scsAsId}`,
        `grant_type=client_credentials&client_id=${alpha.scsAsId}%00`,
        `grant_type=client_credentials&client_id=${alpha.scsAsId}%C3%28`,
        `grant_type=client_credentials&client_id=${alpha.scsAsId}&=x`,
        `grant_type=client_credentials&client_id=${alpha.scsAsId}&scope=a b`,
        Array.from({ length: 40 }, (_, i) => `p${i}=1`).join('&'),
      ]) {
        expectOAuthError(await tokenRequest(alpha, body), 400, 'invalid_request');
      }
      // Bytes that are not UTF-8, and UTF-8 that is not ASCII.
      expectOAuthError(await tokenRequest(alpha, Buffer.from([0x67, 0x3d, 0xff, 0xfe])), 400, 'invalid_request');
      expectOAuthError(await tokenRequest(alpha, `${grant(alpha.scsAsId)}&x=é`), 400, 'invalid_request');
      await expectToken(alpha, grant(alpha.scsAsId));
    });

    it('an unknown path gets 404 and a wrong method 405, as ProblemDetails; known paths succeed', async () => {
      // A T8 path without a token is an authentication failure, not an unknown path.
      expectProblem(await req({ client: alpha, path: '/3gpp-monitoring-event/v1/as-alpha/subscriptions' }), 401);
      expectProblem(await req({ client: alpha, path: '/3gpp-unknown-api/v1/as-alpha/things' }), 401);
      expectProblem(await req({ client: alpha, path: '/not-t8/v1/as-alpha/subscriptions' }), 404);
      expectProblem(await req({ client: alpha, path: '/../../etc/passwd' }), 404);
      expectProblem(await reqH2({ client: alpha, path: '/nope?x=%00' }), 404);
      const wrong = expectProblem(await req({ client: alpha, path: TOKEN_PATH }), 405);
      expect(wrong['detail']).to.be.a('string');
      expectProblem(await req({ client: alpha, method: 'DELETE', path: JWKS_PATH }), 405);
      const meta = await req({ client: alpha, path: `${METADATA_PATH}?q=1` });
      expect(meta.status).to.equal(200);
      expect(parseJson(meta)['issuer']).to.equal(ISSUER);
    });

    it('an oversized header block gets 431 and a malformed request 400, as ProblemDetails; the edge keeps serving', async () => {
      expectProblem(await req({ client: alpha, path: JWKS_PATH, headers: { 'x-filler': 'a'.repeat(20 * 1024) } }), 431);
      expectProblem(await reqH2({ client: alpha, path: JWKS_PATH, headers: { 'x-filler': 'a'.repeat(20 * 1024) } }), 431);
      const raw = await rawExchange(`GET ${JWKS_PATH} HTTP/1.1\r\nHost: ${EDGE_HOSTNAME}\r\nBad Header\r\n\r\n`);
      expect(raw).to.match(/^HTTP\/1\.1 400 /);
      expect(raw).to.include('application/problem+json');
      expect(raw).not.to.match(STACK_TRACE);
      expect((await reqH2({ client: alpha, path: JWKS_PATH })).status).to.equal(200);
      expect((await req({ client: alpha, path: JWKS_PATH })).status).to.equal(200);
    });
  });

  describe('timeouts and stop (a second edge with short timeouts)', () => {
    let second: { port: number; stop(): Promise<void>; whenReady?: Promise<void> };
    const h2Session = (toPort: number): ClientHttp2Session => {
      const session = http2Connect(`https://${EDGE_HOSTNAME}:${toPort}`, {
        host: '127.0.0.1',
        servername: EDGE_HOSTNAME,
        ca,
        cert: alpha.certPem,
        key: alpha.keyPem,
      });
      session.on('error', () => undefined);
      return session;
    };

    before(async () => {
      const logger = createLogger({
        service: 'edge',
        destination: new Writable({
          write(chunk: Buffer, _enc, cb) {
            mesh.logs.push(chunk.toString('utf8'));
            cb();
          },
        }),
      });
      second = await startEdgeService({ ...mesh.env, PORT: '0', EDGE_HEADERS_TIMEOUT_MS: '300', EDGE_REQUEST_TIMEOUT_MS: '1000', EDGE_BODY_TIMEOUT_MS: '300' }, logger);
      await second.whenReady;
    });

    after(async () => {
      await second?.stop();
    });

    it('HTTP/1.1: headers that never finish (slowloris) get 408 and the connection closes; a complete request succeeds', async () => {
      const t0 = Date.now();
      const raw = await rawExchange(`GET ${JWKS_PATH} HTTP/1.1\r\nHost: ${EDGE_HOSTNAME}\r\nX-Slow: `, second.port);
      expect(raw).to.match(/^HTTP\/1\.1 408 /);
      expect(raw).to.include('application/problem+json');
      expect(Date.now() - t0).to.be.below(4_000);
      const ok = await edgeRequest({ port: second.port, ca, client: alpha, path: JWKS_PATH });
      expect(ok.status).to.equal(200);
    });

    it('HTTP/2: a body that stops arriving gets 408 ProblemDetails; the same session then gets a token', async () => {
      const session = h2Session(second.port);
      try {
        const stalled = await new Promise<{ status: number; body: string }>((resolve, reject) => {
          const s = session.request({ ':method': 'POST', ':path': TOKEN_PATH, 'content-type': FORM['content-type'], 'content-length': '200' });
          s.write('grant_type=client_');
          let status = 0;
          const chunks: Buffer[] = [];
          s.on('response', h => (status = Number(h[':status'])));
          s.on('data', (c: Buffer) => chunks.push(c));
          s.on('end', () => resolve({ status, body: Buffer.concat(chunks).toString('utf8') }));
          s.on('error', reject);
        });
        expect(stalled.status).to.equal(408);
        expect(JSON.parse(stalled.body)).to.include({ status: 408 });
        const ok = await new Promise<number>((resolve, reject) => {
          const s = session.request({ ':method': 'POST', ':path': TOKEN_PATH, 'content-type': FORM['content-type'] });
          s.on('response', h => resolve(Number(h[':status'])));
          s.on('error', reject);
          s.resume();
          s.end(grant(alpha.scsAsId));
        });
        expect(ok).to.equal(200);
      } finally {
        session.destroy();
      }
    });

    it('stops promptly with an HTTP/2 session open, closing it and refusing new connections; the mesh edge still serves', async () => {
      const session = h2Session(second.port);
      const closed = new Promise<void>(resolve => session.once('close', () => resolve()));
      await new Promise<void>((resolve, reject) => {
        const s = session.request({ ':path': JWKS_PATH });
        s.on('response', h => (h[':status'] === 200 ? resolve() : reject(new Error(String(h[':status'])))));
        s.on('error', reject);
        s.resume();
      });
      const t0 = Date.now();
      await second.stop();
      await closed;
      expect(Date.now() - t0).to.be.below(3_000);
      const refused = await expectNoResponse(edgeRequest({ port: second.port, ca, client: alpha, path: JWKS_PATH }));
      expect(refused.code).to.equal('ECONNREFUSED');
      const ok = await req({ client: alpha, path: JWKS_PATH });
      expect(ok.status).to.equal(200);
    });
  });

  describe('secrets stay out of logs', () => {
    it('no issued access token and no AS private key appears in any service log', () => {
      expect(issuedTokens.length).to.be.greaterThan(10);
      expect(mesh.logs.length).to.be.greaterThan(0);
      const logs = mesh.logs.join('\n');
      // Positive control: the scan can see what the edge logs.
      expect(logs).to.include('access token issued');
      for (const token of issuedTokens) {
        const [, payload, signature] = token.split('.');
        expect(logs).not.to.include(token);
        expect(logs).not.to.include(payload);
        expect(logs).not.to.include(signature);
      }
      expect(logs).not.to.include('PRIVATE KEY');
      for (const pem of privateKeys) {
        for (const line of pem.split('\n').filter(l => l.length >= 32 && !l.startsWith('-----'))) expect(logs).not.to.include(line);
      }
    });
  });
});
