/**
 * SECURITY-TESTS.md "Tampering" 37-43: requests altered after the AS signed them, signatures
 * that cover too little or are broken, tokens with header parameters the SCEF never issues, and
 * domain fronting. Each refusal: status, nothing downstream (no subscription, capability-exposure
 * not called, the nonce not consumed), one audit event, and the untampered request succeeding.
 */
import { createPrivateKey } from 'node:crypto';
import { expect } from 'chai';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { edgeRequest, operatorAuthClient, t8CaPem } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import {
  AuditReader,
  contentDigest,
  expectEdgeDenial,
  retraced,
  grantAccess,
  invokeCount,
  MONITORING_EVENT,
  onboardT8As,
  simulatedUe,
  T8_ISSUER,
  T8Client,
} from './support/t8-client.ts';
import type { PreparedRequest, T8As } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUe(1);
const UE2 = simulatedUe(2);
const COLLECTION = `${ME}/as-tamper/subscriptions`;

function base64url(json: unknown): string {
  return Buffer.from(JSON.stringify(json)).toString('base64url');
}

/** The `Signature` field with its bytes replaced. */
function withSignatureBytes(p: PreparedRequest, change: (sig: Buffer) => Buffer): PreparedRequest {
  const name = Object.keys(p.headers).find(k => k.toLowerCase() === 'signature')!;
  const value = p.headers[name] as string;
  const bytes = Buffer.from(/^sig1=:([^:]*):$/.exec(value)![1], 'base64');
  return { ...p, headers: { ...p.headers, [name]: `sig1=:${change(bytes).toString('base64')}:` } };
}

describe('T8 security catalogue: tampering (SECURITY-TESTS 37-43)', function () {
  this.timeout(30_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  let as: T8As;
  let client: T8Client;
  let token: string;

  const sub = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    externalId: UE1.externalId,
    notificationDestination: 'https://127.0.0.1:9443/notify',
    monitoringType: 'LOCATION_REPORTING',
    maximumNumberOfReports: 3,
    ...extra,
  });
  const count = async (): Promise<number> => {
    const { reply } = await client.call({ method: 'GET', path: COLLECTION });
    expect(reply.status, reply.text).to.equal(200);
    return reply.json<unknown[]>().length;
  };
  /**
   * Sends a tampered request and checks the refusal and that nothing ran. Tampered copies share
   * the original's nonce, so the original succeeding afterwards shows no copy consumed it; a
   * request prepared on its own (`ownNonce`) has its nonce reused by a valid request instead.
   */
  const refused = async (copy: PreparedRequest, reason: string, ownNonce = false): Promise<void> => {
    const cause = 'INVALID_SIGNATURE';
    const tampered = retraced(copy);
    const subscriptions = await count();
    const invoked = invokeCount(mesh, 'as-tamper');
    await expectEdgeDenial(client, audit, { prepared: tampered, reply: await client.send(tampered) }, { status: 401, cause, reason });
    expect(invokeCount(mesh, 'as-tamper'), 'capability-exposure was called').to.equal(invoked);
    expect(await count()).to.equal(subscriptions);
    if (ownNonce && tampered.nonce) {
      const again = await client.call({ method: 'GET', path: COLLECTION, sign: { nonce: tampered.nonce } });
      expect(again.reply.status, 'the nonce of a refused request was consumed').to.equal(200);
    }
  };
  const created = async (p: PreparedRequest): Promise<void> => {
    const reply = await client.send(p);
    expect(reply.status, reply.text).to.equal(201);
  };

  before(async function () {
    this.timeout(90_000);
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443' },
    });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    as = await onboardT8As(mesh, operator, 'as-tamper', { scopes: [MONITORING_EVENT] });
    await grantAccess(mesh, {
      'as-tamper': {
        apis: {
          [MONITORING_EVENT]: {
            operations: ['create', 'read', 'update', 'delete'],
            categories: ['location'],
            targets: [`externalId:${UE1.externalId}`, `externalId:${UE2.externalId}`],
            anyTarget: false,
            locationGranularity: 'exact',
          },
        },
      },
    });
    client = T8Client.forMesh(mesh, as);
    token = await client.token();
  });

  after(async function () {
    this.timeout(30_000);
    await client?.close();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
  });

  it('37. a body changed after signing (Content-Digest mismatch, or a recomputed digest the signature does not cover) gets 401; the original succeeds', async () => {
    const original = await client.prepare({ method: 'POST', path: COLLECTION, body: sub() });
    const changed = Buffer.from(JSON.stringify(sub({ externalId: UE2.externalId })));
    await refused({ ...original, body: changed }, 'DIGEST_MISMATCH');
    await refused({ ...original, body: changed, headers: { ...original.headers, 'content-digest': contentDigest(changed) } }, 'SIGNATURE_SIGNATURE_INVALID');
    await created(original);
  });

  it('38. each covered component changed (@method, @target-uri path and query, @authority, content-type, authorization) fails the signature', async () => {
    const post = await client.prepare({ method: 'POST', path: COLLECTION, body: sub() });
    await refused({ ...post, method: 'PUT' }, 'SIGNATURE_SIGNATURE_INVALID');
    await refused({ ...post, url: post.url.replace('as-tamper/subscriptions', 'as-tamper/subscriptions/') }, 'SIGNATURE_SIGNATURE_INVALID');
    await refused({ ...post, url: `${post.url}?monitoringType=ROAMING_STATUS` }, 'SIGNATURE_SIGNATURE_INVALID');
    // Another authority that passes the SNI check (a trailing dot, another port) is not the signed @target-uri.
    await refused({ ...post, headers: { ...post.headers, host: 'localhost.' } }, 'SIGNATURE_SIGNATURE_INVALID');
    await refused({ ...post, headers: { ...post.headers, host: 'localhost:8443' } }, 'SIGNATURE_SIGNATURE_INVALID');
    await refused({ ...post, headers: { ...post.headers, 'content-type': 'application/merge-patch+json' } }, 'SIGNATURE_SIGNATURE_INVALID');
    const otherToken = await freshToken();
    expect(otherToken).not.to.equal(token);
    await refused({ ...post, headers: { ...post.headers, authorization: `Bearer ${otherToken}` } }, 'SIGNATURE_SIGNATURE_INVALID');
    await created(post);
  });

  /** A second valid token of the same AS (a new token request). */
  async function freshToken(): Promise<string> {
    const other = T8Client.forMesh(mesh, as);
    try {
      return await other.token();
    } finally {
      await other.close();
    }
  }

  it('39. a valid signature that omits a required component (content-digest on POST, authorization) gets 401; the full set succeeds', async () => {
    await refused(
      await client.prepare({ method: 'POST', path: COLLECTION, body: sub(), sign: { components: ['@method', '@target-uri', 'authorization', 'content-type'] } }),
      'SIGNATURE_COMPONENT_MISSING',
      true,
    );
    await refused(await client.prepare({ method: 'GET', path: COLLECTION, sign: { components: ['@method', '@target-uri'] } }), 'SIGNATURE_COMPONENT_MISSING', true);
    await refused(await client.prepare({ method: 'GET', path: COLLECTION, sign: { components: ['@method', '@path', 'authorization'] } }), 'SIGNATURE_COMPONENT_MISSING', true);
    await created(await client.prepare({ method: 'POST', path: COLLECTION, body: sub() }));
  });

  it('40. a weak digest (md5, sha, crc32c) in Content-Digest, signed, gets 401; sha-512 and sha-256 succeed', async () => {
    const body = Buffer.from(JSON.stringify(sub()));
    for (const weak of [`md5=:${Buffer.alloc(16).toString('base64')}:`, `sha=:${Buffer.alloc(20).toString('base64')}:`, 'crc32c=:AAAAAA==:']) {
      await refused(await client.prepare({ method: 'POST', path: COLLECTION, rawBody: body, digest: { value: weak } }), 'DIGEST_ALGORITHM_NOT_ALLOWED', true);
    }
    await created(await client.prepare({ method: 'POST', path: COLLECTION, rawBody: body, digest: 'sha-512' }));
    await created(await client.prepare({ method: 'POST', path: COLLECTION, rawBody: body }));
  });

  it('41. a truncated, bit-flipped or zero (r = s = 0) ECDSA signature gets 401; the intact one succeeds', async () => {
    const p = await client.prepare({ method: 'POST', path: COLLECTION, body: sub() });
    await refused(
      withSignatureBytes(p, s => s.subarray(0, 63)),
      'SIGNATURE_SIGNATURE_INVALID',
    );
    await refused(
      withSignatureBytes(p, s => Buffer.concat([s, Buffer.from([0])])),
      'SIGNATURE_SIGNATURE_INVALID',
    );
    await refused(
      withSignatureBytes(p, s => {
        const c = Buffer.from(s);
        c[10] = c[10] ^ 0x01;
        return c;
      }),
      'SIGNATURE_SIGNATURE_INVALID',
    );
    await refused(
      withSignatureBytes(p, () => Buffer.alloc(64)),
      'SIGNATURE_SIGNATURE_INVALID',
    );
    await created(p);
  });

  it('42. an access token (JWS) with a crit extension or b64:false in its header gets 401 invalid_token; the issued token succeeds', async () => {
    const [header, payload] = token.split('.') as [string, string, string];
    const h = JSON.parse(Buffer.from(header, 'base64url').toString()) as Record<string, unknown>;
    // An attacker's own P-256 key signs the altered header: only the header parameters differ in intent.
    const attacker = createPrivateKey({
      key: {
        kty: 'EC',
        crv: 'P-256',
        x: 'f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU',
        y: 'x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0',
        d: 'jpsQnnGQmL-YBIffH1136cLNMhFGvvcUq-UpMyYZ9Xk',
      },
      format: 'jwk',
    });
    const { sign } = await import('node:crypto');
    for (const extra of [
      { crit: ['exp'], exp: 1 },
      { b64: false, crit: ['b64'] },
    ]) {
      const forgedHeader = base64url({ ...h, ...extra });
      const signature = sign('sha256', Buffer.from(`${forgedHeader}.${payload}`), { key: attacker, dsaEncoding: 'ieee-p1363' }).toString('base64url');
      const forged = `${forgedHeader}.${payload}.${signature}`;
      const subscriptions = await count();
      const invoked = invokeCount(mesh, 'as-tamper');
      const out = await client.call({ method: 'POST', path: COLLECTION, body: sub(), token: forged });
      await expectEdgeDenial(client, audit, out, { status: 401, cause: 'INVALID_TOKEN', reason: 'INVALID_TOKEN' });
      expect(out.reply.headers['www-authenticate']).to.equal('Bearer realm="scef", error="invalid_token"');
      expect(invokeCount(mesh, 'as-tamper')).to.equal(invoked);
      expect(await count()).to.equal(subscriptions);
    }
    await created(await client.prepare({ method: 'POST', path: COLLECTION, body: sub(), token }));
  });

  it('43. a Host other than the TLS server name (domain fronting) on a T8 path gets 421, audited, nothing called; the matching Host succeeds', async () => {
    const p = await client.prepare({ method: 'GET', path: COLLECTION });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(p.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const invoked = invokeCount(mesh, 'as-tamper');
    const fronted = await edgeRequest({ port: mesh.ports['edge'], ca: t8CaPem(mesh), client: as, path: COLLECTION, headers: { ...headers, host: 'other.example' } });
    expect(fronted.status).to.equal(421);
    expect(JSON.parse(fronted.body)).to.include({ status: 421 });
    expect(invokeCount(mesh, 'as-tamper')).to.equal(invoked);
    const events = (await audit.byTrace(p.traceId)).filter(e => e.service === 'edge');
    expect(events).to.have.length(1);
    expect(events[0]).to.deep.include({ action: 't8.request', decision: 'deny', reason: 'AUTHORITY_MISMATCH' });
    const ok = await edgeRequest({ port: mesh.ports['edge'], ca: t8CaPem(mesh), client: as, path: COLLECTION, headers: { ...headers, host: 'localhost' } });
    expect(ok.status, ok.body).to.equal(200);
  });
});
