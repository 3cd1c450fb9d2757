/**
 * Issue 4, revocation at the edge: a revoked AS, certificate or token is refused at every edge
 * replica within a second (fed by two authentication replicas), on connections that were already
 * open too, and the revoked identity's open HTTP/2 sessions are closed; an edge started after a
 * revocation refuses from its first request; RFC 7009 self-revocation; NATS outage behaviour.
 */
import { expect } from 'chai';
import { connect as h2connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { Writable } from 'node:stream';
import { startAuthenticationService } from '@aese/authentication-service';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import { RevocationKind } from '@aese/protos/authentication/v1';
import type { RevokeRequest, AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { operatorAuthClient, t8CaPem } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { AuditReader, grantAccess, MONITORING_EVENT, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';
import type { PreparedRequest, T8As } from './support/t8-client.ts';
import { eventually } from '@aese/testing';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUe(1);
const PROPAGATION_SLO_MS = 1_000;

describe('revocation at every edge replica (issue 4)', function () {
  this.timeout(90_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  const stops: (() => Promise<void>)[] = [];
  const edgePorts: number[] = [];
  const logger = () =>
    createLogger({
      service: 'edge',
      level: 'debug',
      destination: new Writable({
        write(chunk: Buffer, _e, cb) {
          mesh.logs.push(
            ...chunk
              .toString('utf8')
              .split('\n')
              .filter(l => l.length > 0),
          );
          cb();
        },
      }),
    });
  const startEdge = async (env: Record<string, string> = {}) => {
    const edge = await startEdgeService({ ...mesh.env, PORT: '0', ...env }, logger());
    await edge.whenReady;
    stops.push(() => edge.stop());
    return edge;
  };

  before(async function () {
    this.timeout(90_000);
    mesh = await startTestMesh({ edge: startEdgeService, extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', STALENESS_BOUND_MS: '2000' } });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    // Two authentication replicas; the second edge asks the second one.
    const auth2 = await startAuthenticationService({ ...mesh.env, PORT: '0' }, createLogger({ service: 'authentication', level: 'silent' }));
    await auth2.whenReady;
    stops.push(() => auth2.stop());
    const edge2 = await startEdge({ AUTHENTICATION_ADDR: `localhost:${auth2.port}` });
    edgePorts.push(mesh.ports['edge'], edge2.port);
  });
  after(async function () {
    this.timeout(30_000);
    for (const s of stops.reverse()) await s();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
  });

  const grant = { operations: ['read'], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false };
  const onboard = async (scsAsId: string): Promise<{ as: T8As; clients: T8Client[] }> => {
    const as = await onboardT8As(mesh, operator, scsAsId, { scopes: [MONITORING_EVENT] });
    await grantAccess(mesh, { [scsAsId]: { apis: { [MONITORING_EVENT]: grant } } });
    const clients = edgePorts.map(p => T8Client.forMesh(mesh, as, p));
    stops.push(async () => {
      for (const c of clients) await c.close();
    });
    return { as, clients };
  };
  const list = (c: T8Client) => c.call({ method: 'GET', path: `${ME}/${c.as.scsAsId}/subscriptions` }).then(r => r.reply.status);
  /** An HTTP/2 session of the AS, open before the revocation, that sends signed requests. */
  const openSession = (as: T8As, port: number): Promise<ClientHttp2Session> =>
    new Promise((resolve, reject) => {
      const s = h2connect(`https://127.0.0.1:${port}`, { ca: t8CaPem(mesh), cert: as.certPem, key: as.keyPem, servername: 'localhost' });
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  const sendOn = (s: ClientHttp2Session, p: PreparedRequest): Promise<number> =>
    new Promise((resolve, reject) => {
      const url = new URL(p.url);
      const headers: Record<string, string | string[]> = { ':method': p.method, ':path': `${url.pathname}${url.search}`, ':authority': url.host };
      for (const [k, v] of Object.entries(p.headers)) headers[k.toLowerCase()] = v;
      const req = s.request(headers);
      req.on('response', h => {
        req.resume();
        req.on('end', () => resolve(Number(h[':status'])));
      });
      req.on('error', reject);
      req.end();
    });
  const closed = (s: ClientHttp2Session): Promise<void> => new Promise(r => (s.closed || s.destroyed ? r() : s.once('close', () => r())));
  const revoke = (r: Partial<RevokeRequest>) =>
    operator.revoke({ kind: RevocationKind.REVOCATION_KIND_UNSPECIFIED, scsAsId: '', certificateThumbprint: '', jti: '', reason: 'test', ...r });
  const refusedEverywhere = async (clients: T8Client[], t0: number, statuses: number[]): Promise<number> => {
    for (const c of clients) {
      for (;;) {
        const status = await list(c);
        if (statuses.includes(status)) break;
        expect(status).to.equal(200);
        expect(Date.now() - t0, 'revocation not effective in time').to.be.below(PROPAGATION_SLO_MS);
        await new Promise(r => setTimeout(r, 5));
      }
    }
    return Date.now() - t0;
  };

  it('revoking an AS refuses it at both edges within a second and closes its open HTTP/2 sessions', async () => {
    const { as, clients } = await onboard('rev-edge-as');
    const bystander = await onboard('rev-edge-bystander');
    for (const c of [...clients, ...bystander.clients]) expect(await list(c)).to.equal(200);
    const sessions = await Promise.all(edgePorts.map(p => openSession(as, p)));
    for (const [i, s] of sessions.entries()) {
      expect(await sendOn(s, await clients[i].prepare({ method: 'GET', path: `${ME}/${as.scsAsId}/subscriptions` }))).to.equal(200);
    }
    const t0 = Date.now();
    await revoke({ kind: RevocationKind.REVOCATION_KIND_APPLICATION_SERVER, scsAsId: as.scsAsId });
    await Promise.race([Promise.all(sessions.map(closed)), new Promise((_, rej) => setTimeout(() => rej(new Error('sessions not closed')), PROPAGATION_SLO_MS))]);
    await refusedEverywhere(clients, t0, [401, 403]);
    // Positive control: another AS is untouched.
    for (const c of bystander.clients) expect(await list(c)).to.equal(200);
    expect(await audit.waitFor(e => e.action === 'revoke.application-server')).to.have.length.at.least(1);
  });

  it('revoking a certificate refuses it at both edges within a second; revoking a token refuses that token only', async () => {
    const cert = await onboard('rev-edge-cert');
    for (const c of cert.clients) expect(await list(c)).to.equal(200);
    let t0 = Date.now();
    await revoke({ kind: RevocationKind.REVOCATION_KIND_CERTIFICATE, certificateThumbprint: cert.as.thumbprint });
    await refusedEverywhere(cert.clients, t0, [401, 403]);

    const tok = await onboard('rev-edge-token');
    for (const c of tok.clients) expect(await list(c)).to.equal(200);
    const token = await tok.clients[0].token();
    // Both edges use the same token (the second client adopts the first's).
    (tok.clients[1] as unknown as { tokens: Map<string, string> }).tokens.set(MONITORING_EVENT, token);
    for (const c of tok.clients) expect(await list(c)).to.equal(200);
    const jti = (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { jti: string }).jti;
    t0 = Date.now();
    await revoke({ kind: RevocationKind.REVOCATION_KIND_TOKEN, jti });
    await refusedEverywhere(tok.clients, t0, [401]);
    // A new token of the same AS works: only that token was revoked.
    (tok.clients[0] as unknown as { tokens: Map<string, string> }).tokens.clear();
    expect(await list(tok.clients[0])).to.equal(200);
  });

  it('an edge started after a revocation refuses the revoked AS from its first request', async () => {
    const { as } = await onboard('rev-edge-late');
    await revoke({ kind: RevocationKind.REVOCATION_KIND_APPLICATION_SERVER, scsAsId: as.scsAsId });
    const late = await startEdge();
    const c = T8Client.forMesh(mesh, as, late.port);
    stops.push(() => c.close());
    const status = await c.token().then(
      () => 'token issued',
      (e: Error) => e.message,
    );
    expect(status).not.to.equal('token issued');
  });

  it('RFC 7009: an AS revokes its own token at /oauth2/revoke; both edges refuse it', async () => {
    const { clients } = await onboard('rev-edge-7009');
    const token = await clients[0].token();
    (clients[1] as unknown as { tokens: Map<string, string> }).tokens.set(MONITORING_EVENT, token);
    for (const c of clients) expect(await list(c)).to.equal(200);
    const t0 = Date.now();
    const res = await clients[0].postForm('/oauth2/revoke', { token, token_type_hint: 'access_token' });
    expect(res.status).to.equal(200);
    await refusedEverywhere(clients, t0, [401]);
    // Revoking garbage is answered 200 too (RFC 7009 section 2.2) and changes nothing.
    expect((await clients[0].postForm('/oauth2/revoke', { token: 'not-a-token' })).status).to.equal(200);
  });

  it('NATS down: tokens are still issued within the staleness bound, then 503; T8 requests fail closed; all recovers by itself', async () => {
    const { clients } = await onboard('rev-edge-outage');
    const c = clients[0];
    expect(await list(c)).to.equal(200);
    const tokenStatus = async () => (await c.postForm('/oauth2/token', { grant_type: 'client_credentials', client_id: 'rev-edge-outage', scope: MONITORING_EVENT })).status;
    await mesh.nats.stop();
    try {
      // Some time without NATS, yet within the staleness bound: the point of this check.
      await new Promise(r => setTimeout(r, 300));
      expect(await tokenStatus(), 'within the staleness bound').to.equal(200);
      // The replay guard cannot decide without its shared store: refused, nothing executed.
      expect(await list(c)).to.equal(503);
      // Waiting out the staleness bound is the point: past it, tokens are refused.
      await new Promise(r => setTimeout(r, 2_000));
      expect(await tokenStatus(), 'past the staleness bound').to.equal(503);
    } finally {
      await mesh.nats.restart();
    }
    await eventually(async () => (await tokenStatus()) === 200 && (await list(c)) === 200, 20_000, 'recovery without a restart');
  });
});
