/**
 * Issue 4, audit: each kind of denied security decision (TLS handshake, token, signature, replay,
 * authorization, rate limit, revoked identity) leaves exactly one event in the whole audit trail,
 * from whichever service decided, and the trail verifies.
 */
import { expect } from 'chai';
import { connect as tlsConnect } from 'node:tls';
import type { NatsConnection } from 'nats';
import { startEdgeService } from '@aese/edge-service';
import { readAuditTrail, verifyAuditTrail } from '@aese/events';
import type { AuditEvent } from '@aese/events';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { RevocationKind } from '@aese/protos/authentication/v1';
import { operatorAuthClient, t8CaPem } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { grantAccess, MONITORING_EVENT, onboardT8As, retraced, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';
import { eventually } from '@aese/testing';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUe(1);
const UE2 = simulatedUe(2);

describe('audit: one event per denied decision (issue 4)', function () {
  this.timeout(90_000);
  let mesh: TestMesh;
  let nc: NatsConnection;
  let operator: MeshClient<AuthenticationServiceClient>;
  let c: T8Client;

  before(async function () {
    this.timeout(90_000);
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', EDGE_RATE_LIMIT_PER_S: '5', EDGE_RATE_LIMIT_BURST: '5', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443' },
    });
    nc = await mesh.natsConnect('operator');
    operator = operatorAuthClient(mesh);
    const as = await onboardT8As(mesh, operator, 'audited-as', { scopes: [MONITORING_EVENT] });
    await grantAccess(mesh, {
      'audited-as': { apis: { [MONITORING_EVENT]: { operations: ['create', 'read'], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false } } },
    });
    c = T8Client.forMesh(mesh, as);
  });
  after(async () => {
    await c?.close();
    operator?.close();
    await nc?.close();
    await mesh?.stop();
  });

  /** Runs one denied action and returns the audit events it added (after the writers flush). */
  const added = async (action: () => Promise<unknown>, expected: 'some' | 'none' = 'some'): Promise<AuditEvent[]> => {
    const before = (await readAuditTrail(nc)).length;
    await action();
    if (expected === 'some') await eventually(async () => (await readAuditTrail(nc)).length > before, 5_000, 'the audit events of the action');
    // Exactly what the action added: a duplicate would follow at once; this is the window it must not appear in.
    await new Promise(r => setTimeout(r, 250));
    return (await readAuditTrail(nc)).slice(before);
  };
  const list = `${ME}/audited-as/subscriptions`;
  const one = (events: AuditEvent[], service: string, reason: RegExp): void => {
    expect(
      events.map(e => `${e.service}:${e.action}:${e.reason}`),
      'exactly one audit event',
    ).to.have.length(1);
    expect(events[0].service).to.equal(service);
    expect(events[0].decision).to.equal('deny');
    expect(events[0].reason).to.match(reason);
  };

  it('a positive control leaves no deny event', async () => {
    const events = await added(async () => expect((await c.call({ method: 'GET', path: list })).reply.status).to.equal(200), 'none');
    expect(events.filter(e => e.decision === 'deny')).to.have.length(0);
  });

  it('handshake without a client certificate', async () => {
    one(
      await added(
        () =>
          new Promise<void>(resolve => {
            const s = tlsConnect({ host: '127.0.0.1', port: mesh.ports['edge'], servername: 'localhost', ca: t8CaPem(mesh), minVersion: 'TLSv1.3' });
            s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'));
            s.on('error', () => resolve());
            s.on('close', () => resolve());
          }),
      ),
      'edge',
      /./,
    );
  });

  it('token endpoint: ungranted scope', async () => {
    one(await added(() => c.postForm('/oauth2/token', { grant_type: 'client_credentials', client_id: 'audited-as', scope: '3gpp-unknown-api' })), 'edge', /SCOPE/);
  });

  it('signature: tampered target URI', async () => {
    const p = await c.prepare({ method: 'GET', path: list });
    one(await added(() => c.send({ ...p, url: `${p.url}?x=1` })), 'edge', /SIGNATURE/);
  });

  it('replay: the same signed request twice', async () => {
    const first = await c.call({ method: 'GET', path: list });
    expect(first.reply.status).to.equal(200);
    one(await added(() => c.send(retraced(first.prepared))), 'edge', /REPLAYED/);
  });

  it('authorization: a UE outside the grants (decided and audited by the authorization service)', async () => {
    const body = { externalId: UE2.externalId, notificationDestination: 'https://127.0.0.1:9443/n', monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 1 };
    one(
      await added(async () => expect((await c.call({ method: 'POST', path: list, body })).reply.status).to.equal(403)),
      'authorization',
      /TARGET_NOT_GRANTED|OPERATION_NOT_GRANTED/,
    );
  });

  it('capability exposure: a notification destination refused for SSRF, and a smuggled scsAsId in the body', async () => {
    const ssrf = { externalId: UE1.externalId, notificationDestination: 'https://169.254.169.254/latest', monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 1 };
    one(await added(async () => expect((await c.call({ method: 'POST', path: list, body: ssrf })).reply.status).to.equal(400)), 'capability-exposure', /./);
    const smuggled = { ...ssrf, notificationDestination: 'https://127.0.0.1:9443/n', scsAsId: 'someone-else' };
    one(await added(async () => expect((await c.call({ method: 'POST', path: list, body: smuggled })).reply.status).to.equal(400)), 'capability-exposure', /./);
  });

  it('rate limit: each refused request is one event', async () => {
    let refused = 0;
    const events = await added(async () => {
      const replies = await Promise.all(Array.from({ length: 12 }, () => c.call({ method: 'GET', path: list })));
      refused = replies.filter(r => r.reply.status === 429).length;
    });
    expect(refused).to.be.greaterThan(0);
    expect(events.map(e => e.reason)).to.deep.equal(Array.from({ length: refused }, () => 'RATE_LIMITED'));
    // The next tests need the AS's token bucket full again: waiting out its refill is the point.
    await new Promise(r => setTimeout(r, 2500));
  });

  it('revoked identity: one change event for the revocation, then one deny per refused request; the trail verifies', async () => {
    const change = await added(() =>
      operator.revoke({ kind: RevocationKind.REVOCATION_KIND_APPLICATION_SERVER, scsAsId: 'audited-as', certificateThumbprint: '', jti: '', reason: 'test' }),
    );
    expect(change.map(e => `${e.service}:${e.action}:${e.decision}`)).to.deep.equal(['authentication:revoke.application-server:change']);
    const fresh = new T8Client(c.as, mesh.ports['edge'], t8CaPem(mesh));
    try {
      one(await added(() => fresh.call({ method: 'GET', path: list }).catch(() => undefined)), 'edge', /./);
    } finally {
      await fresh.close();
    }
    expect(verifyAuditTrail(await readAuditTrail(nc)).breaks).to.deep.equal([]);
  });
});
