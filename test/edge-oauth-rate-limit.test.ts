/**
 * Issue 7: per-AS rate limits on the OAuth endpoints. A burst of token (or revocation) requests
 * from one AS gets 429 with Retry-After and an RFC 6749-style JSON error, each refusal audited;
 * another AS is unaffected; after Retry-After the AS is served again.
 */
import { expect } from 'chai';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { AuditReader, MONITORING_EVENT, onboardT8As, T8_ISSUER, T8Client } from './support/t8-client.ts';

const RATE = 1;
const BURST = 3;
const TOKEN = '/oauth2/token';
const REVOKE = '/oauth2/revoke';

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

describe('OAuth endpoints: per-AS rate limit (429 + Retry-After, audited)', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  let ca: T8Client;
  let cb: T8Client;

  const tokenForm = (c: T8Client) => ({ grant_type: 'client_credentials', client_id: c.as.scsAsId, scope: MONITORING_EVENT });
  const revokeForm = (c: T8Client) => ({ token: 'not-a-token-of-anyone', client_id: c.as.scsAsId });
  /** Waits until the buckets are full again. */
  const refill = (): Promise<void> => sleep((BURST / RATE) * 1000 + 100);

  /** Polls the audit trail until `n` rate-limit refusals of `action` by `scsAsId` are there. */
  async function rateLimitedEvents(scsAsId: string, action: string, n: number): Promise<number> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = (await audit.all()).filter(e => e.service === 'edge' && e.actor === scsAsId && e.action === action && e.reason === 'RATE_LIMITED');
      if (found.length >= n || Date.now() > deadline) return found.length;
      await sleep(100);
    }
  }

  before(async function () {
    this.timeout(90_000);
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', EDGE_OAUTH_RATE_LIMIT_PER_S: String(RATE), EDGE_OAUTH_RATE_LIMIT_BURST: String(BURST) },
    });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    const [a, b] = await Promise.all(['as-oauth-rate-a', 'as-oauth-rate-b'].map(id => onboardT8As(mesh, operator, id, { scopes: [MONITORING_EVENT] })));
    ca = T8Client.forMesh(mesh, a);
    cb = T8Client.forMesh(mesh, b);
  });

  after(async function () {
    this.timeout(30_000);
    for (const c of [ca, cb]) await c?.close();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
  });

  it('a token burst gets 429 with Retry-After and a JSON error, each refusal audited; another AS still gets tokens; after Retry-After the AS does again', async () => {
    await refill();
    const replies = await Promise.all(Array.from({ length: 12 }, () => ca.postForm(TOKEN, tokenForm(ca))));
    const served = replies.filter(r => r.status === 200);
    const limited = replies.filter(r => r.status === 429);
    expect(served.length + limited.length, replies.map(r => `${r.status} ${r.text}`).join('\n')).to.equal(12);
    expect(served.length).to.be.within(BURST, BURST + 1);
    for (const r of served) expect(JSON.parse(r.text)).to.have.property('access_token').that.is.a('string');
    for (const r of limited) {
      expect(r.headers['content-type']).to.match(/^application\/json/);
      expect(r.headers['cache-control']).to.equal('no-store');
      expect(Number(r.headers['retry-after'])).to.be.within(1, Math.ceil(1 / RATE) + 1);
      const body = JSON.parse(r.text) as Record<string, unknown>;
      expect(body).to.have.all.keys('error', 'error_description');
      expect(body['error']).to.equal('slow_down');
      expect(body).not.to.have.property('access_token');
    }
    expect(await rateLimitedEvents('as-oauth-rate-a', 'oauth.token', limited.length)).to.equal(limited.length);

    // Positive control: the other AS has its own bucket.
    const other = await cb.postForm(TOKEN, tokenForm(cb));
    expect(other.status, other.text).to.equal(200);
    expect(await rateLimitedEvents('as-oauth-rate-b', 'oauth.token', 0)).to.equal(0);

    // After the Retry-After the limited AS gets a token again.
    await sleep(Number(limited[0].headers['retry-after']) * 1000);
    const again = await ca.postForm(TOKEN, tokenForm(ca));
    expect(again.status, again.text).to.equal(200);
    expect(JSON.parse(again.text)).to.have.property('access_token');
  });

  it('the revocation endpoint shares the bucket: a burst gets 429 with Retry-After (audited); the other AS revokes as before', async () => {
    await refill();
    const replies = await Promise.all(Array.from({ length: 10 }, () => ca.postForm(REVOKE, revokeForm(ca))));
    const ok = replies.filter(r => r.status === 200);
    const limited = replies.filter(r => r.status === 429);
    expect(ok.length + limited.length, replies.map(r => `${r.status} ${r.text}`).join('\n')).to.equal(10);
    expect(ok.length).to.be.within(BURST, BURST + 1);
    for (const r of limited) {
      expect(Number(r.headers['retry-after'])).to.be.at.least(1);
      expect(JSON.parse(r.text)).to.deep.include({ error: 'slow_down' });
    }
    expect(await rateLimitedEvents('as-oauth-rate-a', 'oauth.revoke', limited.length)).to.equal(limited.length);
    const other = await cb.postForm(REVOKE, revokeForm(cb));
    expect(other.status, other.text).to.equal(200);
  });
});
