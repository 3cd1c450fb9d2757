/**
 * Issue 7, item 3: verification survives key rotation. The event-signing key is rotated and its
 * retirement period (2 s here) passes; every service restarts and must still trust what the old
 * key signed (registry entries, the policy version in force, revocations), because crypto keeps
 * every event-signing public key in its key set.
 */
import { expect } from 'chai';
import type { NatsConnection } from 'nats';
import { startEdgeService } from '@aese/edge-service';
import { readAuditTrail } from '@aese/events';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { RevocationKind } from '@aese/protos/authentication/v1';
import type { RevokeRequest, AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient, KeyStatus } from '@aese/protos/crypto/v1';
import type { MeshServiceName } from '@aese/runtime';
import { authorizationClient, eventually, request } from '../services/authorization/test/support.ts';
import type { AuthorizationClient } from '../services/authorization/test/support.ts';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { grantAccess, MONITORING_EVENT, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';
import type { T8As } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUe(1);
const RETIREMENT_S = 2;
const EVERY_SERVICE: MeshServiceName[] = ['crypto', 'authentication', 'authorization', 'replay-guard', 'capability-exposure', 'edge'];

describe('event-signing key rotation: what the old key signed stays in force (issue 7, item 3)', function () {
  this.timeout(180_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let operatorCrypto: MeshClient<CryptoServiceClient>;
  let policies: AuthorizationClient;
  let pdp: AuthorizationClient;
  let natsOperator: NatsConnection;
  const clients: T8Client[] = [];

  before(async () => {
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', CRYPTO_KEY_RETIREMENT_S: String(RETIREMENT_S) },
    });
    operator = operatorAuthClient(mesh);
    operatorCrypto = createMeshClient(CryptoServiceClient, { address: mesh.env['CRYPTO_ADDR'], tls: mesh.tls('operator'), serverId: mesh.id('crypto') });
    policies = authorizationClient(mesh, 'operator');
    pdp = authorizationClient(mesh, 'capability-exposure');
    natsOperator = await mesh.natsConnect('operator');
  });
  after(async () => {
    for (const c of clients) await c.close();
    operator?.close();
    operatorCrypto?.close();
    policies?.close();
    pdp?.close();
    await natsOperator?.close();
    await mesh?.stop();
  });

  const grant = { operations: ['read'], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false };
  const client = (as: T8As): T8Client => {
    const c = T8Client.forMesh(mesh, as);
    clients.push(c);
    return c;
  };
  const list = (c: T8Client) => c.call({ method: 'GET', path: `${ME}/${c.as.scsAsId}/subscriptions` }).then(r => r.reply.status);
  const tokenOutcome = (c: T8Client) =>
    c.token().then(
      () => 'issued',
      (e: Error) => `refused: ${e.message}`,
    );
  const revoke = (r: Partial<RevokeRequest>) =>
    operator.revoke({ kind: RevocationKind.REVOCATION_KIND_UNSPECIFIED, scsAsId: '', certificateThumbprint: '', jti: '', reason: 'test', ...r });
  const keySet = async () => (await operatorCrypto.getJwks({})).keys;
  const activeKid = async (purpose: KeyPurpose) => (await keySet()).find(k => k.purpose === purpose && k.status === KeyStatus.KEY_STATUS_ACTIVE)!.kid;

  it('after the rotation, the retirement period and a restart of every service: ASes get tokens, the policy version is unchanged, every revocation holds', async () => {
    // The access-token key is rotated first too: its old half must leave the key set, which shows
    // the retirement period really passed (the control for the event-signing key, which must stay).
    const rotatedToken = await operatorCrypto.rotateKey({ purpose: KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN, algorithm: 0 });

    // State signed with the first event-signing key: registrations, grants, revocations, a suspension.
    const names = ['rot-active', 'rot-second', 'rot-revoked', 'rot-cert', 'rot-token', 'rot-suspended'] as const;
    const as = {} as Record<(typeof names)[number], T8As>;
    for (const n of names) as[n] = await onboardT8As(mesh, operator, n, { scopes: [MONITORING_EVENT] });
    const policyVersion = await grantAccess(mesh, Object.fromEntries(names.map(n => [n, { apis: { [MONITORING_EVENT]: grant } }])));
    const c = Object.fromEntries(names.map(n => [n, client(as[n])])) as Record<(typeof names)[number], T8Client>;
    for (const n of names) expect(await list(c[n]), n).to.equal(200);
    const revokedToken = await c['rot-token'].token();
    const jti = (JSON.parse(Buffer.from(revokedToken.split('.')[1], 'base64url').toString()) as { jti: string }).jti;
    await revoke({ kind: RevocationKind.REVOCATION_KIND_APPLICATION_SERVER, scsAsId: 'rot-revoked' });
    await revoke({ kind: RevocationKind.REVOCATION_KIND_CERTIFICATE, certificateThumbprint: as['rot-cert'].thumbprint });
    await revoke({ kind: RevocationKind.REVOCATION_KIND_TOKEN, jti });
    await operator.suspendApplicationServer({ scsAsId: 'rot-suspended' });
    const refusedBefore = async () => {
      for (const n of ['rot-revoked', 'rot-cert', 'rot-token', 'rot-suspended'] as const) {
        await eventually(`${n} to be refused`, async () => [401, 403].includes(await list(c[n])));
      }
    };
    await refusedBefore();

    const oldEventKid = await activeKid(KeyPurpose.KEY_PURPOSE_EVENT_SIGNING);
    const rotated = await operatorCrypto.rotateKey({ purpose: KeyPurpose.KEY_PURPOSE_EVENT_SIGNING, algorithm: 0 });
    expect(rotated.retiredKid).to.equal(oldEventKid);
    const retiredEntry = (await keySet()).find(k => k.kid === oldEventKid)!;
    expect(retiredEntry.status).to.equal(KeyStatus.KEY_STATUS_RETIRED);
    // Pass the retirement period of both rotated keys.
    const until = Math.max(retiredEntry.expiresAtMs, (await keySet()).find(k => k.kid === rotatedToken.retiredKid)?.expiresAtMs ?? 0);
    await eventually('the retirement period to pass', () => Date.now() > until + 250, RETIREMENT_S * 1000 + 5_000);
    expect((await keySet()).map(k => k.kid)).not.to.include(rotatedToken.retiredKid);

    const auditMark = (await readAuditTrail(natsOperator)).length;
    for (const name of EVERY_SERVICE) await mesh.restart(name);
    for (const t of clients) await t.close();
    clients.length = 0;

    // The old event-signing key is still verifiable (but not shown to ASes: the edge's JWKS).
    const published = await keySet();
    expect(published.find(k => k.kid === oldEventKid)?.status).to.equal(KeyStatus.KEY_STATUS_RETIRED);
    const fresh = Object.fromEntries(names.map(n => [n, client(as[n])])) as Record<(typeof names)[number], T8Client>;
    expect((await fresh['rot-active'].publishedKeys(true)).map(k => k.kid)).not.to.include(oldEventKid);

    // Every AS onboarded before still gets tokens and is served.
    for (const n of ['rot-active', 'rot-second'] as const) {
      expect(await tokenOutcome(fresh[n]), n).to.equal('issued');
      expect(await list(fresh[n]), n).to.equal(200);
    }
    // The policy version in force is unchanged and decides.
    expect((await policies.getPolicies({})).version).to.equal(policyVersion);
    const decision = await pdp.decide(request({ scsAsId: 'rot-active', pathScsAsId: 'rot-active', operation: 'read', targets: [`externalId:${UE1.externalId}`] }));
    expect(decision).to.deep.include({ allowed: true, policyVersion });
    // Every revocation and the suspension still hold.
    expect(await tokenOutcome(fresh['rot-revoked'])).to.match(/^refused/);
    expect(await tokenOutcome(fresh['rot-cert'])).to.match(/^refused/);
    expect(await tokenOutcome(fresh['rot-suspended'])).to.match(/^refused/);
    (fresh['rot-token'] as unknown as { tokens: Map<string, string> }).tokens.set(MONITORING_EVENT, revokedToken);
    expect(await list(fresh['rot-token'])).to.equal(401);
    // Positive control for the revoked token: the same AS with a new token is served.
    (fresh['rot-token'] as unknown as { tokens: Map<string, string> }).tokens.clear();
    expect(await list(fresh['rot-token'])).to.equal(200);

    // What the new key signs is applied as well: a new grant after the rotation.
    const next = await grantAccess(mesh, { 'rot-second': { apis: { [MONITORING_EVENT]: { ...grant, operations: ['read', 'create'] } } } });
    expect(next).to.equal(policyVersion + 1);
    await eventually('the new version to decide', async () => (await pdp.decide(request())).policyVersion === next);

    // No false alarm: nothing was refused as badly signed.
    const trail = (await readAuditTrail(natsOperator)).slice(auditMark);
    expect(trail.filter(e => e.reason === 'BAD_SIGNATURE')).to.deep.equal([]);
  });
});
