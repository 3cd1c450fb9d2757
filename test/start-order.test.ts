/**
 * Issue 7, item 4: start order converges. Every service but crypto is started over existing state
 * (a registry, a policy version, revocations); crypto comes 10 s later. Until then the services
 * that verify or sign through crypto listen but are not SERVING (the edge answers 503); then they
 * become SERVING by themselves with the full state, with no false BAD_SIGNATURE alarm.
 */
import { expect } from 'chai';
import type { NatsConnection } from 'nats';
import { startEdgeService } from '@aese/edge-service';
import { readAuditTrail } from '@aese/events';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { RevocationKind } from '@aese/protos/authentication/v1';
import type { MeshServiceName } from '@aese/runtime';
import { authorizationClient, eventually, request } from '../services/authorization/test/support.ts';
import type { AuthorizationClient } from '../services/authorization/test/support.ts';
import { operatorAuthClient } from './support/as-client.ts';
import { healthCheck, meshCredentials } from './support/grpc-probes.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { grantAccess, MONITORING_EVENT, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';
import type { T8As } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUe(1);
const CRYPTO_DELAY_MS = 10_000;
/** Generous: a loaded two-core machine; the measured time is printed for the closing note. */
const SERVING_BOUND_MS = 30_000;
/** gRPC services that verify or sign through crypto, with their address variables. */
const DEPENDENT: [MeshServiceName, string][] = [
  ['authentication', 'AUTHENTICATION_ADDR'],
  ['authorization', 'AUTHORIZATION_ADDR'],
  ['capability-exposure', 'CAPABILITY_EXPOSURE_ADDR'],
];

describe('start order converges: crypto started 10 s after the others (issue 7, item 4)', function () {
  this.timeout(180_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let policies: AuthorizationClient;
  let pdp: AuthorizationClient;
  let natsOperator: NatsConnection;
  const clients: T8Client[] = [];

  before(async () => {
    mesh = await startTestMesh({ edge: startEdgeService, extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0' } });
    operator = operatorAuthClient(mesh);
    policies = authorizationClient(mesh, 'operator');
    pdp = authorizationClient(mesh, 'capability-exposure');
    natsOperator = await mesh.natsConnect('operator');
  });
  after(async () => {
    for (const c of clients) await c.close();
    operator?.close();
    policies?.close();
    pdp?.close();
    await natsOperator?.close();
    await mesh?.stop();
  });

  const health = (addrVar: string) => healthCheck(mesh.env[addrVar], meshCredentials(mesh.tls('operator'))).catch((e: Error) => `unreachable: ${e.message}`);
  const client = (as: T8As): T8Client => {
    const c = T8Client.forMesh(mesh, as);
    clients.push(c);
    return c;
  };
  const list = (c: T8Client) => c.call({ method: 'GET', path: `${ME}/${c.as.scsAsId}/subscriptions` }).then(r => r.reply.status);
  /** The token endpoint's status for a client-credentials request (503 while the edge is not ready). */
  const tokenStatus = async (c: T8Client) => (await c.postForm('/oauth2/token', { grant_type: 'client_credentials', client_id: c.as.scsAsId, scope: MONITORING_EVENT })).status;

  it('services listen NOT_SERVING until crypto is up, then serve the full registry and policy with no BAD_SIGNATURE event', async () => {
    // State signed through crypto: two ASes, their grants, one revoked.
    const grant = { operations: ['read'], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false };
    const names = ['order-a', 'order-b', 'order-revoked'] as const;
    const as = {} as Record<(typeof names)[number], T8As>;
    for (const n of names) as[n] = await onboardT8As(mesh, operator, n, { scopes: [MONITORING_EVENT] });
    const policyVersion = await grantAccess(mesh, Object.fromEntries(names.map(n => [n, { apis: { [MONITORING_EVENT]: grant } }])));
    await operator.revoke({ kind: RevocationKind.REVOCATION_KIND_APPLICATION_SERVER, scsAsId: 'order-revoked', certificateThumbprint: '', jti: '', reason: 'test' });
    const auditMark = (await readAuditTrail(natsOperator)).length;

    await mesh.stopServices();
    for (const name of ['authentication', 'authorization', 'replay-guard', 'capability-exposure', 'edge'] as const) {
      await mesh.startService(name, { waitReady: false });
    }
    const othersUp = Date.now();
    const early = client(as['order-a']);
    // While crypto is down: listening, NOT_SERVING; the edge answers 503. Probed throughout the delay.
    let probes = 0;
    while (Date.now() - othersUp < CRYPTO_DELAY_MS) {
      for (const [name, addrVar] of DEPENDENT) expect(await health(addrVar), name).to.equal('NOT_SERVING');
      expect(await tokenStatus(early), 'edge').to.equal(503);
      probes++;
      // Probing once a second for the whole of crypto's delay is the point: NOT_SERVING throughout.
      await new Promise(r => setTimeout(r, 1_000));
    }
    expect(probes).to.be.at.least(3);
    // The replay guard needs nothing from crypto: it serves throughout (positive control of the probe).
    expect(await health('REPLAY_GUARD_ADDR')).to.equal('SERVING');

    await mesh.startService('crypto');
    const cryptoUp = Date.now();
    const servingAt: Record<string, number> = {};
    await eventually(
      'every service SERVING and the edge answering',
      async () => {
        for (const [name, addrVar] of DEPENDENT) if (servingAt[name] === undefined && (await health(addrVar)) === 'SERVING') servingAt[name] = Date.now() - cryptoUp;
        if (servingAt['edge'] === undefined && (await tokenStatus(early)) === 200) servingAt['edge'] = Date.now() - cryptoUp;
        return Object.keys(servingAt).length === DEPENDENT.length + 1;
      },
      SERVING_BOUND_MS,
    );
    console.log(`      time from crypto up to SERVING (ms): ${JSON.stringify(servingAt)}`);

    // The full state: both ASes served, the revoked one refused, the policy version unchanged.
    for (const n of ['order-a', 'order-b'] as const) expect(await list(client(as[n])), n).to.equal(200);
    const revoked = await client(as['order-revoked'])
      .token()
      .then(
        () => 'issued',
        (e: Error) => `refused: ${e.message}`,
      );
    expect(revoked).to.match(/^refused/);
    expect((await policies.getPolicies({})).version).to.equal(policyVersion);
    const decision = await pdp.decide(request({ scsAsId: 'order-b', pathScsAsId: 'order-b', operation: 'read', targets: [`externalId:${UE1.externalId}`] }));
    expect(decision).to.deep.include({ allowed: true, policyVersion });
    // No false alarm while crypto was away.
    const trail = (await readAuditTrail(natsOperator)).slice(auditMark);
    expect(trail.filter(e => e.reason === 'BAD_SIGNATURE')).to.deep.equal([]);
  });
});
