import { expect } from 'chai';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import { RevocationKind } from '@aese/protos/authentication/v1';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import type { MeshServiceName } from '@aese/runtime';
import { eventually, freePort } from '@aese/testing';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { grantAccess, MONITORING_EVENT, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const AS = 'as-metrics';
const SERVICES: readonly MeshServiceName[] = ['crypto', 'authentication', 'authorization', 'replay-guard', 'capability-exposure', 'edge'];

interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** The samples of a Prometheus text exposition. */
function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2]!;
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of the samples with this name whose labels include `where`. */
function total(samples: readonly Sample[], name: string, where: Readonly<Record<string, string>> = {}): number {
  return samples.filter(s => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v)).reduce((n, s) => n + s.value, 0);
}

describe('observability: each service serves its own metrics for Prometheus', function () {
  this.timeout(120_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let client: T8Client;
  const metricsPorts: Partial<Record<MeshServiceName, number>> = {};

  const scrape = async (service: MeshServiceName): Promise<Sample[]> => {
    const res = await fetch(`http://127.0.0.1:${metricsPorts[service]!}/metrics`);
    expect(res.status, service).to.equal(200);
    return parseExposition(await res.text());
  };

  before(async function () {
    this.timeout(90_000);
    for (const s of SERVICES) metricsPorts[s] = await freePort();
    mesh = await startTestMesh({
      edge: startEdgeService,
      // Every replay check through replay-guard, whose own metrics this test reads too.
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443', EDGE_REPLAY_DECISIONS: 'replay-guard' },
      metricsPorts,
    });
    operator = operatorAuthClient(mesh);
    const as = await onboardT8As(mesh, operator, AS, { scopes: [MONITORING_EVENT] });
    await grantAccess(mesh, {
      [AS]: { apis: { [MONITORING_EVENT]: { operations: ['create', 'read'], categories: ['location'], targets: [`externalId:${simulatedUe(1).externalId}`], anyTarget: false } } },
    });
    client = T8Client.forMesh(mesh, as);
  });

  after(async () => {
    await client?.close();
    operator?.close();
    await mesh?.stop();
  });

  it('serves nothing but the metrics path', async () => {
    const res = await fetch(`http://127.0.0.1:${metricsPorts.edge!}/other`);
    expect(res.status).to.equal(404);
    const ok = await fetch(`http://127.0.0.1:${metricsPorts.edge!}/metrics`);
    expect(ok.status).to.equal(200);
  });

  it('shows every NATS connection up, in each service', async () => {
    for (const s of SERVICES) expect(total(await scrape(s), 'aese_nats_connected'), s).to.equal(1);
  });

  it('counts T8 requests, decisions, replay refusals, cache lookups and revocation lag as they happened', async () => {
    const subscription = (ue: number) => ({
      externalId: simulatedUe(ue).externalId,
      notificationDestination: 'https://127.0.0.1:9443/n',
      monitoringType: 'LOCATION_REPORTING',
      maximumNumberOfReports: 2,
    });
    // Served: a subscription created, then read twice.
    const created = await client.call({ method: 'POST', path: `${ME}/${AS}/subscriptions`, body: subscription(1) });
    expect(created.reply.status, created.reply.text).to.equal(201);
    const path = `${ME}/${AS}/subscriptions/${String(created.reply.headers['location']).split('/').pop()!}`;
    const read = await client.call({ method: 'GET', path });
    expect(read.reply.status).to.equal(200);
    expect((await client.call({ method: 'GET', path })).reply.status).to.equal(200);
    // Refused by the replay guard: the first read sent again, nonce and all.
    expect((await client.send(read.prepared)).status).to.equal(401);
    // Denied by authorization (a UE not granted), twice: capability-exposure remembers no denial.
    for (let i = 0; i < 2; i++) expect((await client.call({ method: 'POST', path: `${ME}/${AS}/subscriptions`, body: subscription(2) })).reply.status).to.equal(403);

    const edge = await scrape('edge');
    const t8 = 'aese_t8_request_duration_count';
    const api = edge.find(s => s.name === t8 && s.labels['status'] === '201')?.labels['api'];
    expect(api, 'the T8 API is a label').to.be.a('string').and.not.equal('unknown');
    expect(total(edge, t8, { api: api!, outcome: 'served', status: '201' })).to.equal(1);
    expect(total(edge, t8, { api: api!, outcome: 'served', status: '200' })).to.equal(2);
    expect(total(edge, t8, { api: api!, outcome: 'served', status: '403' })).to.equal(2);
    expect(total(edge, t8, { api: api!, outcome: 'refused', status: '401' })).to.equal(1);
    expect(total(edge, t8), 'no other request measured').to.equal(6);
    expect(total(edge, 'aese_t8_request_duration_sum')).to.be.greaterThan(0);
    expect(total(edge, 'aese_t8_request_duration_bucket', { le: '+Inf' })).to.equal(6);
    expect(total(edge, 'aese_replay_refusals_total', { verdict: 'replayed' })).to.equal(1);
    expect(total(edge, 'aese_replay_refusals_total'), 'the accepted checks are no refusal').to.equal(1);
    // One verification per token: the first request misses, the five others hit.
    expect(total(edge, 'aese_cache_lookups_total', { cache: 'edge.token', result: 'miss' })).to.equal(1);
    expect(total(edge, 'aese_cache_lookups_total', { cache: 'edge.token', result: 'hit' })).to.equal(5);
    // The second read is capability-exposure's first answer given again (it marked it reusable).
    expect(total(edge, 'aese_cache_lookups_total', { cache: 'edge.answer-reuse', result: 'miss' }), 'the first read').to.equal(1);
    expect(total(edge, 'aese_cache_lookups_total', { cache: 'edge.answer-reuse', result: 'hit' }), 'the second read').to.equal(1);

    const guard = await scrape('replay-guard');
    expect(total(guard, 'aese_replay_refusals_total', { verdict: 'replayed' })).to.equal(1);
    expect(total(guard, 'aese_replay_refusals_total')).to.equal(1);

    const ce = await scrape('capability-exposure');
    expect(total(ce, 'aese_cache_lookups_total', { cache: 'capability-exposure.decision', result: 'hit' }), 'the second read never came here').to.equal(0);
    expect(total(ce, 'aese_cache_lookups_total', { cache: 'capability-exposure.decision', result: 'miss' })).to.equal(4);

    const authz = await scrape('authorization');
    expect(total(authz, 'aese_authorization_decisions_total', { decision: 'allow' })).to.equal(2);
    expect(total(authz, 'aese_authorization_decisions_total', { decision: 'deny', cause: 'TARGET_NOT_GRANTED' })).to.equal(2);
    expect(total(authz, 'aese_authorization_decisions_total')).to.equal(4);
    expect(total(authz, 'aese_cache_lookups_total', { cache: 'authorization.decision', result: 'hit' }), 'the repeated denial').to.equal(1);
    expect(total(authz, 'aese_cache_lookups_total', { cache: 'authorization.decision', result: 'miss' })).to.equal(3);

    // A revoked token: its revocation is enforced at the edge (the lag recorded once), then refused.
    const token = await client.token();
    const jti = (JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()) as { jti: string }).jti;
    expect(total(edge, 'aese_revocation_lag_count')).to.equal(0);
    await operator.revoke({ kind: RevocationKind.REVOCATION_KIND_TOKEN, scsAsId: '', certificateThumbprint: '', jti, reason: 'test' });
    let lagged: Sample[] = [];
    await eventually(async () => total((lagged = await scrape('edge')), 'aese_revocation_lag_count') > 0, 5_000, 'the revocation enforced at the edge');
    expect(total(lagged, 'aese_revocation_lag_count', { kind: 'token' })).to.equal(1);
    expect(total(lagged, 'aese_revocation_lag_sum')).to.be.within(0, 5);
    expect((await client.call({ method: 'GET', path })).reply.status).to.equal(401);
    const after = await scrape('edge');
    expect(total(after, t8, { api: 'unknown', outcome: 'refused', status: '401' }), 'refused before routing').to.equal(1);
    expect(total(after, 'aese_cache_lookups_total', { cache: 'edge.token', result: 'miss' }), 'the revocation emptied the cache').to.equal(2);
    expect(total(after, 'aese_replay_refusals_total'), 'a refused token never reaches the replay guard').to.equal(1);
  });
});
