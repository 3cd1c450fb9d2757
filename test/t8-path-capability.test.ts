/**
 * The capability-exposure path through the real edge: authorization is decided before anything
 * with an outside effect (no DNS for an unauthorized request), unknown and ungranted UEs answer
 * alike (no existence oracle), malformed identifiers are the AS's 400 (not an authorization
 * outage), and notification destinations keep to the operator's port policy. Every refusal has
 * a positive control beside it.
 */
import { expect } from 'chai';
import { startCapabilityExposureService } from '@aese/capability-exposure-service';
import type { RunningCapabilityExposure } from '@aese/capability-exposure-service';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import type { Logger } from '@aese/logger';
import type { HostResolver } from '@aese/net-guard';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { simulatedGroupId, simulatedUeIdentifiers } from '../services/capability-exposure/src/network/simulated-core.ts';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { AS_SESSION_WITH_QOS, AuditReader, grantAccess, MONITORING_EVENT, onboardT8As, T8_ISSUER, T8Client } from './support/t8-client.ts';
import type { RequestSpec, T8As, T8Reply } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const QOS = '/3gpp-as-session-with-qos/v1';
const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);
const UE3 = simulatedUeIdentifiers(3);
const GROUP1 = simulatedGroupId(1);
const GROUP2 = simulatedGroupId(2);
/** An address no simulated UE holds (the simulator numbers 100 UEs from 10.45.0.1). */
const FREE_IPV4 = '10.45.200.1';
const FREE_IPV6 = '2001:db8:45::beef';
/** Granted to the AS although the network does not know it. */
const GRANTED_UNKNOWN = 'nobody@scef.test';
const PUBLIC_ADDRESS = '203.0.114.10';
const RECEIVER = 'https://as.example.com/notify';
/** A host name the AS chose: resolving it would tell the AS's DNS that the SCEF looked. */
const PROBE_HOST = 'probe-7f3a.attacker.example.net';

describe('T8 capability-exposure path: decide first, no existence oracle, identifier syntax, destination ports', function () {
  this.timeout(30_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  let a: T8As;
  let any: T8As;
  let ca: T8Client;
  let cany: T8Client;
  let ce: RunningCapabilityExposure | undefined;
  /** Every host name the SCEF resolved: the test's DNS, public for *.example.com only. */
  const lookups: string[] = [];
  const resolver: HostResolver = async host => {
    lookups.push(host);
    if (host.endsWith('.example.com')) return [{ address: PUBLIC_ADDRESS, family: 4 }];
    throw new Error('ENOTFOUND');
  };

  const sub = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    externalId: UE1.externalId,
    notificationDestination: RECEIVER,
    monitoringType: 'LOCATION_REPORTING',
    maximumNumberOfReports: 10,
    ...extra,
  });
  const session = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    notificationDestination: RECEIVER,
    ueIpv4Addr: UE1.ipv4Addr,
    qosReference: 'qos-gold',
    events: ['QOS_GUARANTEED'],
    ...extra,
  });
  const call = async (c: T8Client, base: string, spec: Omit<RequestSpec, 'token'>): Promise<T8Reply> =>
    (await c.call({ ...spec, token: await c.token(base === QOS ? AS_SESSION_WITH_QOS : MONITORING_EVENT) })).reply;
  /** Decisions capability-exposure asked for (of authorization or its cache). */
  const decisions = (): number => {
    const stats = ce!.decisionCacheStats()!;
    return stats.hits + stats.asked;
  };
  const create = async (c: T8Client, base: string, body: Record<string, unknown>): Promise<T8Reply> =>
    call(c, base, { method: 'POST', path: `${base}/${c.as.scsAsId}/subscriptions`, body });
  const count = async (c: T8Client, base: string): Promise<number> => {
    const reply = await call(c, base, { method: 'GET', path: `${base}/${c.as.scsAsId}/subscriptions` });
    expect(reply.status, reply.text).to.equal(200);
    return reply.json<unknown[]>().length;
  };
  const problem = (reply: T8Reply, status: number, cause: string): Record<string, unknown> => {
    expect(reply.status, reply.text).to.equal(status);
    expect(reply.headers['content-type']).to.equal('application/problem+json');
    const p = reply.json<Record<string, unknown>>();
    expect(p['cause'], reply.text).to.equal(cause);
    return p;
  };
  const idOf = (reply: T8Reply): string => (reply.headers['location'] as string).split('/').pop()!;

  before(async function () {
    this.timeout(120_000);
    // The edge talks to a capability-exposure instance whose DNS is the recording resolver.
    const edgeWithRecordingCe = async (env: Record<string, string>, logger: Logger) => {
      ce = await startCapabilityExposureService({ ...env, PORT: '0' }, logger, { resolveHost: resolver });
      await ce.whenReady;
      const edge = await startEdgeService({ ...env, CAPABILITY_EXPOSURE_ADDR: `localhost:${ce.port}` }, logger);
      return {
        port: edge.port,
        ...(edge.whenReady ? { whenReady: edge.whenReady } : {}),
        stop: async () => {
          await edge.stop();
          await ce?.stop();
        },
      };
    };
    mesh = await startTestMesh({
      edge: edgeWithRecordingCe,
      extraEnv: {
        AESE_ISSUER: T8_ISSUER,
        SIM_TICK_MS: '0',
        NOTIFICATION_DESTINATION_PORTS: '443,8443',
        NOTIFICATION_DESTINATION_ALLOWLIST: 'receiver.example.com:9443',
      },
    });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    a = await onboardT8As(mesh, operator, 'as-path-a', { scopes: [MONITORING_EVENT, AS_SESSION_WITH_QOS] });
    any = await onboardT8As(mesh, operator, 'as-path-any', { scopes: [AS_SESSION_WITH_QOS] });
    const ops = ['create', 'read', 'update', 'delete', 'notify'];
    await grantAccess(mesh, {
      'as-path-a': {
        apis: {
          [MONITORING_EVENT]: {
            operations: ops,
            categories: ['location'],
            targets: [`externalId:${UE1.externalId}`, `msisdn:${UE2.msisdn}`, `externalGroupId:${GROUP1}`, `externalId:${GRANTED_UNKNOWN}`],
            anyTarget: false,
            locationGranularity: 'exact',
          },
          [AS_SESSION_WITH_QOS]: { operations: ops, categories: ['qos'], targets: [`externalId:${UE1.externalId}`], anyTarget: false },
        },
      },
      'as-path-any': { apis: { [AS_SESSION_WITH_QOS]: { operations: ops, categories: ['qos'], targets: [], anyTarget: true } } },
    });
    ca = T8Client.forMesh(mesh, a);
    cany = T8Client.forMesh(mesh, any);
  });

  after(async function () {
    this.timeout(30_000);
    await ca?.close();
    await cany?.close();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
  });

  describe('authorization before effects', () => {
    it("an ungranted UE with a destination host of the AS's choosing gets 403 and the host is never resolved; a granted UE gets the 400 (the name was resolved)", async () => {
      const before = await count(ca, ME);
      const destination = `https://${PROBE_HOST}/notify`;
      const denied = await create(ca, ME, sub({ externalId: UE3.externalId, notificationDestination: destination }));
      problem(denied, 403, 'TARGET_NOT_GRANTED');
      expect(lookups, 'no DNS lookup for an unauthorized request').not.to.include(PROBE_HOST);
      await audit.waitFor(e => e.service === 'authorization' && e.actor === 'as-path-a' && e.reason === 'TARGET_NOT_GRANTED');

      // Positive control: the same destination for a granted UE is resolved, and refused.
      const refused = await create(ca, ME, sub({ notificationDestination: destination }));
      const p = problem(refused, 400, 'INVALID_NOTIFICATION_DESTINATION');
      expect(p['invalidParams']).to.deep.equal([{ param: '/notificationDestination', reason: 'must name a host that resolves' }]);
      expect(refused.text).not.to.include(PROBE_HOST);
      expect(lookups).to.include(PROBE_HOST);
      expect(await count(ca, ME)).to.equal(before);
      expect((await create(ca, ME, sub())).status).to.equal(201);
    });

    it('the same holds for AsSessionWithQoS: an unknown QoS reference or a refused destination is a 400 only once the UE is granted', async () => {
      const ungranted = { ueIpv4Addr: UE3.ipv4Addr };
      problem(await create(ca, QOS, session({ ...ungranted, qosReference: 'qos-platinum' })), 403, 'TARGET_NOT_GRANTED');
      problem(await create(ca, QOS, session({ ...ungranted, notificationDestination: `https://qos.${PROBE_HOST}/n` })), 403, 'TARGET_NOT_GRANTED');
      expect(lookups).not.to.include(`qos.${PROBE_HOST}`);
      problem(await create(ca, QOS, session({ qosReference: 'qos-platinum' })), 400, 'INVALID_PARAMETER');
      problem(await create(ca, QOS, session({ notificationDestination: `https://qos.${PROBE_HOST}/n` })), 400, 'INVALID_NOTIFICATION_DESTINATION');
      expect(lookups).to.include(`qos.${PROBE_HOST}`);
    });
  });

  describe('no existence oracle', () => {
    it('MonitoringEvent: an unknown externalId, msisdn or group answers exactly as an ungranted one; a granted unknown one may learn it is unknown', async () => {
      const before = await count(ca, ME);
      const pairs: [Record<string, unknown>, Record<string, unknown>][] = [
        [{ externalId: 'stranger@scef.test' }, { externalId: UE3.externalId }],
        [
          { externalId: undefined, msisdn: '33699999999' },
          { externalId: undefined, msisdn: UE3.msisdn },
        ],
        [
          { externalId: undefined, externalGroupId: 'nogroup@scef.test' },
          { externalId: undefined, externalGroupId: GROUP2 },
        ],
        [{ addedExternalIds: ['stranger@scef.test'] }, { addedExternalIds: [UE3.externalId] }],
      ];
      for (const [unknown, ungranted] of pairs) {
        const u = await create(ca, ME, sub(unknown));
        const g = await create(ca, ME, sub(ungranted));
        problem(u, 403, 'TARGET_NOT_GRANTED');
        expect(u.text, JSON.stringify(unknown)).to.equal(g.text);
      }
      expect(await count(ca, ME)).to.equal(before);
      // The AS was granted this identifier: it may learn that the network does not know it.
      problem(await create(ca, ME, sub({ externalId: GRANTED_UNKNOWN })), 400, 'UNKNOWN_UE');
      expect((await create(ca, ME, sub({ externalId: undefined, msisdn: UE2.msisdn }))).status).to.equal(201);
    });

    it('MonitoringEvent PUT and PATCH: moving a subscription to an unknown UE answers as moving it to an ungranted one', async () => {
      const id = idOf(await create(ca, ME, sub()));
      const item = `${ME}/as-path-a/subscriptions/${id}`;
      const original = (await call(ca, ME, { method: 'GET', path: item })).json();
      const put = async (externalId: string) => call(ca, ME, { method: 'PUT', path: item, body: sub({ externalId }) });
      const patch = async (externalId: string) =>
        call(ca, ME, { method: 'PATCH', path: item, contentType: 'application/json-patch+json', body: [{ op: 'replace', path: '/externalId', value: externalId }] });
      for (const change of [put, patch]) {
        const u = await change('stranger@scef.test');
        const g = await change(UE3.externalId);
        problem(u, 403, 'TARGET_NOT_GRANTED');
        expect(u.text).to.equal(g.text);
        problem(await change(GRANTED_UNKNOWN), 400, 'UNKNOWN_UE');
      }
      expect((await call(ca, ME, { method: 'GET', path: item })).json()).to.deep.equal(original);
      expect((await put(UE1.externalId)).status).to.equal(200);
    });

    it('AsSessionWithQoS by address: a free address answers exactly as the address of an ungranted UE; a granted address succeeds', async () => {
      const before = await count(ca, QOS);
      for (const [free, ungranted] of [
        [{ ueIpv4Addr: FREE_IPV4 }, { ueIpv4Addr: UE3.ipv4Addr }],
        [
          { ueIpv4Addr: undefined, ueIpv6Addr: FREE_IPV6 },
          { ueIpv4Addr: undefined, ueIpv6Addr: UE3.ipv6Addr },
        ],
        [
          { ueIpv4Addr: undefined, gpsi: 'extid-stranger@scef.test' },
          { ueIpv4Addr: undefined, gpsi: `extid-${UE3.externalId}` },
        ],
        [
          { ueIpv4Addr: undefined, gpsi: 'msisdn-33699999999' },
          { ueIpv4Addr: undefined, gpsi: `msisdn-${UE3.msisdn}` },
        ],
      ] as const) {
        const f = await create(ca, QOS, session(free));
        const g = await create(ca, QOS, session(ungranted));
        problem(f, 403, 'TARGET_NOT_GRANTED');
        expect(f.text, JSON.stringify(free)).to.equal(g.text);
      }
      expect(await count(ca, QOS)).to.equal(before);
      const created = await create(ca, QOS, session());
      expect(created.status, created.text).to.equal(201);

      // PUT cannot move a session to another UE, whatever that UE: the same 400 for both.
      const item = `${QOS}/as-path-a/subscriptions/${idOf(created)}`;
      const movedFree = await call(ca, QOS, { method: 'PUT', path: item, body: session({ ueIpv4Addr: FREE_IPV4 }) });
      const movedUngranted = await call(ca, QOS, { method: 'PUT', path: item, body: session({ ueIpv4Addr: UE3.ipv4Addr }) });
      problem(movedFree, 400, 'UE_IDENTIFIER_IMMUTABLE');
      expect(movedFree.text).to.equal(movedUngranted.text);
      expect((await call(ca, QOS, { method: 'PUT', path: item, body: session({ qosReference: 'qos-silver' }) })).status).to.equal(200);
    });

    it('an AS granted any UE may learn that an address is free (UNKNOWN_UE), and reaches a held one', async () => {
      problem(await create(cany, QOS, session({ ueIpv4Addr: FREE_IPV4 })), 400, 'UNKNOWN_UE');
      expect((await create(cany, QOS, session({ ueIpv4Addr: UE3.ipv4Addr }))).status).to.equal(201);
    });
  });

  describe('identifier syntax', () => {
    it('a malformed externalId, msisdn, group or GPSI gets 400 naming the member, never echoing it, and no decision is asked; well-formed ones pass', async () => {
      const before = await count(ca, ME);
      const decided = decisions();
      const cases: [string, Record<string, unknown>, string][] = [
        [ME, sub({ externalId: `${UE1.externalId} ` }), '/externalId'],
        [ME, sub({ externalId: 'ué1@scef.test' }), '/externalId'],
        [ME, sub({ externalId: undefined, msisdn: `+${UE2.msisdn}` }), '/msisdn'],
        [ME, sub({ externalId: undefined, externalGroupId: 'group 1@scef.test' }), '/externalGroupId'],
        [ME, sub({ addedExternalIds: [UE1.externalId, 'no-at-sign'] }), '/addedExternalIds/1'],
        [QOS, session({ ueIpv4Addr: undefined, gpsi: `msisdn-+${UE1.msisdn}` }), '/gpsi'],
        [QOS, session({ ueIpv4Addr: undefined, gpsi: 'extid-ué1@scef.test' }), '/gpsi'],
      ];
      for (const [base, body, member] of cases) {
        const reply = await create(ca, base, body);
        const p = problem(reply, 400, 'INVALID_PARAMETER');
        expect(p['invalidParams'], reply.text).to.have.length(1);
        expect((p['invalidParams'] as { param: string }[])[0].param).to.equal(member);
        for (const v of Object.values(body)) if (typeof v === 'string' && /ue|\+|group|extid|msisdn/.test(v)) expect(reply.text).not.to.include(v);
      }
      expect(decisions(), 'no decision was asked for a malformed identifier').to.equal(decided);
      expect(await count(ca, ME)).to.equal(before);
      // Positive control of the counter: a well-formed, ungranted identifier is decided (and denied).
      problem(await create(ca, ME, sub({ externalId: UE3.externalId })), 403, 'TARGET_NOT_GRANTED');
      expect(decisions()).to.be.greaterThan(decided);
      expect((await create(ca, ME, sub({ externalId: undefined, msisdn: UE2.msisdn }))).status).to.equal(201);
      expect((await create(ca, QOS, session({ ueIpv4Addr: undefined, gpsi: `extid-${UE1.externalId}` }))).status).to.equal(201);
    });
  });

  describe('destination ports', () => {
    it("only the operator's ports (here 443, 8443) and an allow-listed host:port pass; a refused port is never resolved", async () => {
      const before = await count(ca, ME);
      for (const destination of [`https://${PUBLIC_ADDRESS}:6379/n`, 'https://redis-6379.example.com:6379/n', 'https://other.example.com:9443/n']) {
        const reply = await create(ca, ME, sub({ notificationDestination: destination }));
        const p = problem(reply, 400, 'INVALID_NOTIFICATION_DESTINATION');
        expect(p['invalidParams']).to.deep.equal([{ param: '/notificationDestination', reason: 'must use a port the operator allows' }]);
        expect(reply.text).not.to.include(destination);
      }
      expect(lookups).not.to.include('redis-6379.example.com');
      expect(lookups).not.to.include('other.example.com');
      expect(await count(ca, ME)).to.equal(before);
      for (const destination of [`https://${PUBLIC_ADDRESS}/n`, `https://${PUBLIC_ADDRESS}:8443/n`, 'https://receiver.example.com:9443/n']) {
        const reply = await create(ca, ME, sub({ notificationDestination: destination }));
        expect(reply.status, `${destination}: ${reply.text}`).to.equal(201);
      }
    });
  });
});
