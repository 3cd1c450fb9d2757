/**
 * SECURITY-TESTS.md "Malicious AS" 1-7, 9, 10 (8 is in t8-rate-limit.test.ts): ASes with valid
 * credentials that misbehave. Each case asserts the status, that nothing happened downstream
 * (no subscription created or changed, capability-exposure not called, the nonce not consumed)
 * and the audit event, with a positive control beside it.
 */
import { expect } from 'chai';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import {
  AS_SESSION_WITH_QOS,
  AuditReader,
  expectEdgeDenial,
  grantAccess,
  invokeCount,
  MONITORING_EVENT,
  onboardT8As,
  simulatedUe,
  T8_ISSUER,
  T8Client,
} from './support/t8-client.ts';
import type { RequestSpec, T8As, T8Reply } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUe(1);
const UE2 = simulatedUe(2);
const UE3 = simulatedUe(3);
const RECEIVER = 'https://127.0.0.1:9443/notify';

describe('T8 security catalogue: malicious AS (SECURITY-TESTS 1-7, 9, 10)', function () {
  this.timeout(30_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  let a: T8As;
  let b: T8As;
  let ca: T8Client;
  let cb: T8Client;

  const sub = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    externalId: UE1.externalId,
    notificationDestination: RECEIVER,
    monitoringType: 'LOCATION_REPORTING',
    maximumNumberOfReports: 10,
    ...extra,
  });
  const list = async (c: T8Client): Promise<Record<string, unknown>[]> => {
    const { reply } = await c.call({ method: 'GET', path: `${ME}/${c.as.scsAsId}/subscriptions` });
    expect(reply.status, reply.text).to.equal(200);
    return reply.json();
  };
  const create = async (c: T8Client, extra: Record<string, unknown> = {}): Promise<string> => {
    const { reply } = await c.call({ method: 'POST', path: `${ME}/${c.as.scsAsId}/subscriptions`, body: sub(extra) });
    expect(reply.status, reply.text).to.equal(201);
    return (reply.headers['location'] as string).split('/').pop()!;
  };
  const problemOf = (reply: T8Reply): Record<string, unknown> => {
    expect(reply.headers['content-type']).to.equal('application/problem+json');
    return reply.json();
  };
  /** The nonce of a refused request was not recorded: a fresh, valid request may use it. */
  const expectNonceUnused = async (c: T8Client, nonce: string | undefined): Promise<void> => {
    expect(nonce).to.be.a('string');
    const { reply } = await c.call({ method: 'GET', path: `${ME}/${c.as.scsAsId}/subscriptions`, sign: { nonce: nonce! } });
    expect(reply.status, `the nonce of the refused request was consumed: ${reply.text}`).to.equal(200);
  };

  before(async function () {
    this.timeout(90_000);
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443' },
    });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    a = await onboardT8As(mesh, operator, 'as-mal-a', { scopes: [MONITORING_EVENT, AS_SESSION_WITH_QOS] });
    b = await onboardT8As(mesh, operator, 'as-mal-b', { scopes: [MONITORING_EVENT] });
    const grant = (categories: string[], targets: string[]) => ({
      apis: { [MONITORING_EVENT]: { operations: ['create', 'read', 'update', 'delete', 'notify'], categories, targets, anyTarget: false, locationGranularity: 'exact' as const } },
    });
    await grantAccess(mesh, {
      'as-mal-a': grant(['location', 'reachability'], [`externalId:${UE1.externalId}`]),
      'as-mal-b': grant(['reachability'], [`externalId:${UE2.externalId}`]),
    });
    ca = T8Client.forMesh(mesh, a);
    cb = T8Client.forMesh(mesh, b);
  });

  after(async function () {
    this.timeout(30_000);
    await ca?.close();
    await cb?.close();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
  });

  it("1. AS B cannot read, replace or delete AS A's subscription: 403 under A's path, the same 404 as an unknown id under its own; A's subscription is untouched", async () => {
    const id = await create(ca);
    const original = (await ca.call({ method: 'GET', path: `${ME}/as-mal-a/subscriptions/${id}` })).reply;
    expect(original.status).to.equal(200);
    const invoked = invokeCount(mesh, 'as-mal-b');

    for (const spec of [
      { method: 'GET', path: `${ME}/as-mal-a/subscriptions/${id}` },
      { method: 'DELETE', path: `${ME}/as-mal-a/subscriptions/${id}` },
      { method: 'PUT', path: `${ME}/as-mal-a/subscriptions/${id}`, body: sub({ externalId: UE2.externalId }) },
    ] satisfies RequestSpec[]) {
      await expectEdgeDenial(cb, audit, await cb.call(spec), { status: 403, cause: 'SCS_AS_ID_MISMATCH', reason: 'SCS_AS_ID_MISMATCH' });
    }
    expect(invokeCount(mesh, 'as-mal-b'), 'capability-exposure was not called').to.equal(invoked);

    // Under its own path, A's id is as unknown as any other id: identical answers, no oracle.
    const foreign = await cb.call({ method: 'GET', path: `${ME}/as-mal-b/subscriptions/${id}` });
    const unknown = await cb.call({ method: 'GET', path: `${ME}/as-mal-b/subscriptions/00000000-0000-4000-8000-000000000000` });
    expect(foreign.reply.status).to.equal(404);
    expect(foreign.reply.text).to.equal(unknown.reply.text);
    const deleted = await cb.call({ method: 'DELETE', path: `${ME}/as-mal-b/subscriptions/${id}` });
    expect(deleted.reply.status).to.equal(404);

    const after = (await ca.call({ method: 'GET', path: `${ME}/as-mal-a/subscriptions/${id}` })).reply;
    expect(after.status).to.equal(200);
    expect(after.json()).to.deep.equal(original.json());
  });

  it('2. a UE outside the grants gets 403 (the authorization service denies and audits it); nothing is created; a granted UE succeeds', async () => {
    const before = (await list(ca)).length;
    const { reply, prepared } = await ca.call({ method: 'POST', path: `${ME}/as-mal-a/subscriptions`, body: sub({ externalId: UE3.externalId }) });
    expect(reply.status).to.equal(403);
    expect(problemOf(reply)['cause']).to.equal('TARGET_NOT_GRANTED');
    await ca.verifyResponse(reply, prepared);
    expect((await list(ca)).length).to.equal(before);
    const denied = await audit.waitFor(e => e.service === 'authorization' && e.actor === 'as-mal-a' && e.reason === 'TARGET_NOT_GRANTED');
    expect(denied.length).to.be.greaterThan(0);
    expect(JSON.stringify(denied)).not.to.include(UE3.externalId);
    await create(ca);
    expect((await list(ca)).length).to.equal(before + 1);
  });

  it('3. a data category not granted (location with only reachability) gets 403; reachability for the same UE succeeds', async () => {
    const before = (await list(cb)).length;
    const { reply } = await cb.call({ method: 'POST', path: `${ME}/as-mal-b/subscriptions`, body: sub({ externalId: UE2.externalId }) });
    expect(reply.status).to.equal(403);
    expect(problemOf(reply)['cause']).to.equal('CATEGORY_NOT_GRANTED');
    expect((await list(cb)).length).to.equal(before);
    await audit.waitFor(e => e.service === 'authorization' && e.actor === 'as-mal-b' && e.reason === 'CATEGORY_NOT_GRANTED');
    await create(cb, { externalId: UE2.externalId, monitoringType: 'UE_REACHABILITY', reachabilityType: 'DATA' });
    expect((await list(cb)).length).to.equal(before + 1);
  });

  it('4. a token scoped for AsSessionWithQoS used on MonitoringEvent gets 403 insufficient_scope before any service is called; the right scope succeeds', async () => {
    const qosToken = await ca.token(AS_SESSION_WITH_QOS);
    const invoked = invokeCount(mesh, 'as-mal-a');
    const out = await ca.call({ method: 'POST', path: `${ME}/as-mal-a/subscriptions`, body: sub(), token: qosToken });
    await expectEdgeDenial(ca, audit, out, { status: 403, cause: 'insufficient_scope', reason: 'INSUFFICIENT_SCOPE' });
    expect(out.reply.headers['www-authenticate']).to.equal(`Bearer realm="scef", error="insufficient_scope", scope="${MONITORING_EVENT}"`);
    expect(invokeCount(mesh, 'as-mal-a')).to.equal(invoked);
    await expectNonceUnused(ca, out.prepared.nonce);
  });

  it('5. notificationDestination on loopback, link-local metadata, a mesh address or plain http gets 400; nothing is created; an allowed receiver succeeds', async () => {
    const before = (await list(ca)).length;
    for (const destination of [
      'https://127.0.0.1:8443/notify',
      'https://169.254.169.254/latest/meta-data',
      `https://${mesh.env['AUTHENTICATION_ADDR']}/x`,
      'https://[::1]:9443/notify',
      'http://as.example.com/notify',
      'https://10.0.0.8/notify',
    ]) {
      const { reply } = await ca.call({ method: 'POST', path: `${ME}/as-mal-a/subscriptions`, body: sub({ notificationDestination: destination }) });
      expect(reply.status, destination).to.equal(400);
      expect(reply.text).not.to.include(destination);
    }
    expect((await list(ca)).length).to.equal(before);
    await create(ca);
  });

  it('6. body smuggling (a scsAsId member, duplicate keys, an unknown member, a self of another AS) gets 400; nothing is created; the clean body succeeds', async () => {
    const before = (await list(ca)).length;
    const raw = (s: string) => ({ method: 'POST', path: `${ME}/as-mal-a/subscriptions`, rawBody: s }) as const;
    const clean = JSON.stringify(sub());
    for (const spec of [
      raw(JSON.stringify(sub({ scsAsId: 'as-mal-b' }))),
      raw(clean.replace('{', `{"externalId":"${UE2.externalId}",`)),
      raw(JSON.stringify(sub({ extraMember: true }))),
      raw(JSON.stringify(sub({ self: `${T8_ISSUER}${ME}/as-mal-b/subscriptions/00000000-0000-4000-8000-000000000000` }))),
    ]) {
      const { reply } = await ca.call(spec);
      expect(reply.status, reply.text).to.equal(400);
    }
    expect((await list(ca)).length).to.equal(before);
    const ok = await ca.call(raw(clean));
    expect(ok.reply.status).to.equal(201);
  });

  it("7. a signature under another AS's keyid (with its stolen key, or with its own key) gets 401; capability-exposure and the replay guard are not reached", async () => {
    const invoked = invokeCount(mesh, 'as-mal-a');
    const stolen = await ca.call({ method: 'GET', path: `${ME}/as-mal-a/subscriptions`, sign: { key: b.signing } });
    await expectEdgeDenial(ca, audit, stolen, { status: 401, cause: 'INVALID_SIGNATURE', reason: 'SIGNATURE_UNKNOWN_KEY' });
    const named = await ca.call({ method: 'GET', path: `${ME}/as-mal-a/subscriptions`, sign: { keyid: b.signing.kid } });
    await expectEdgeDenial(ca, audit, named, { status: 401, cause: 'INVALID_SIGNATURE', reason: 'SIGNATURE_UNKNOWN_KEY' });
    expect(stolen.reply.text).to.equal(named.reply.text);
    expect(invokeCount(mesh, 'as-mal-a')).to.equal(invoked);
    await expectNonceUnused(ca, stolen.prepared.nonce);
    // Control: B's key verifies B's own requests.
    expect((await cb.call({ method: 'GET', path: `${ME}/as-mal-b/subscriptions` })).reply.status).to.equal(200);
  });

  it('9. a suspended AS is refused on a new connection (403, audited, nothing called); another AS is unaffected', async () => {
    const c = await onboardT8As(mesh, operator, 'as-mal-suspended', { scopes: [MONITORING_EVENT] });
    await grantAccess(mesh, { 'as-mal-suspended': { apis: { [MONITORING_EVENT]: { operations: ['read'], categories: ['location'], targets: [], anyTarget: false } } } });
    const first = T8Client.forMesh(mesh, c);
    try {
      expect((await first.call({ method: 'GET', path: `${ME}/as-mal-suspended/subscriptions` })).reply.status).to.equal(200);
      const token = await first.token();
      await operator.suspendApplicationServer({ scsAsId: 'as-mal-suspended' });
      const invoked = invokeCount(mesh, 'as-mal-suspended');
      const fresh = T8Client.forMesh(mesh, c);
      try {
        const out = await fresh.call({ method: 'GET', path: `${ME}/as-mal-suspended/subscriptions`, token });
        await expectEdgeDenial(fresh, audit, out, { status: 403, cause: 'CLIENT_NOT_AUTHORIZED', reason: 'CLIENT_NOT_ACTIVE' });
        expect(invokeCount(mesh, 'as-mal-suspended')).to.equal(invoked);
      } finally {
        await fresh.close();
      }
      expect((await ca.call({ method: 'GET', path: `${ME}/as-mal-a/subscriptions` })).reply.status).to.equal(200);
    } finally {
      await first.close();
    }
  });

  it('10. signature parameters the AS must not choose (tag of another purpose, alg of another or a weak algorithm, crit) get 401; the profile values succeed', async () => {
    const get = { method: 'GET', path: `${ME}/as-mal-a/subscriptions` } as const;
    const invoked = invokeCount(mesh, 'as-mal-a');
    const cases: [RequestSpec['sign'], string][] = [
      [{ tag: 't8-notification' }, 'SIGNATURE_TAG_NOT_ALLOWED'],
      [{ alg: 'ed25519' }, 'SIGNATURE_ALGORITHM_MISMATCH'],
      [{ alg: 'hmac-sha256' }, 'SIGNATURE_ALGORITHM_NOT_ALLOWED'],
      [{ alg: 'rsa-v1_5-sha256' }, 'SIGNATURE_ALGORITHM_NOT_ALLOWED'],
      [{ extra: { crit: 'alg' } }, 'SIGNATURE_PARAM_NOT_ALLOWED'],
    ];
    for (const [sign, reason] of cases) {
      const out = await ca.call({ ...get, sign: sign! });
      await expectEdgeDenial(ca, audit, out, { status: 401, cause: 'INVALID_SIGNATURE', reason });
    }
    expect(invokeCount(mesh, 'as-mal-a')).to.equal(invoked);
    for (const sign of [{ tag: 't8-request' }, { alg: 'ecdsa-p256-sha256' }, { expires: Math.floor(Date.now() / 1000) + 30 }]) {
      const { reply } = await ca.call({ ...get, sign });
      expect(reply.status, JSON.stringify(sign)).to.equal(200);
    }
  });
});
