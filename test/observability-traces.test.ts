/**
 * Tracing across the mesh: every service runs in this process under one tracer provider with an
 * in-memory exporter, so one T8 request's spans can be followed from the edge's checks through
 * the streamed hops to replay-guard and capability-exposure, and on to authorization.
 */
import { expect } from 'chai';
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { startTracing } from '@aese/telemetry/sdk';
import type { Tracing } from '@aese/telemetry';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { AuditReader, grantAccess, MONITORING_EVENT, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';
import { eventually } from '@aese/testing';

const ME = '/3gpp-monitoring-event/v1';
const UE = simulatedUe(3);
const RECEIVER = 'https://127.0.0.1:9443/notify';
const EDGE_CHECKS = ['t8.authenticate', 't8.rate-limit', 't8.body', 't8.token', 't8.signature', 't8.route', 't8.replay', 't8.invoke', 't8.sign'];
const REPLAY = 'aese.replay_guard.v1.ReplayGuardService/CheckAndRecord';
const INVOKE = 'aese.capability_exposure.v1.CapabilityExposureService/Invoke';
const DECIDE = 'aese.authorization.v1.AuthorizationService/Decide';
/** Spans a request makes downstream of the edge's route check. */
const DOWNSTREAM = ['t8.replay', 't8.invoke', REPLAY, INVOKE, DECIDE];

describe('observability: one trace per T8 request across the mesh', function () {
  this.timeout(40_000);
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let audit: AuditReader;
  let client: T8Client;

  before(async function () {
    this.timeout(90_000);
    tracing = startTracing({ service: 'aese-test-mesh', config: { otlpEndpoint: undefined, otlpTracesEndpoint: undefined, traceSampleRatio: 1 }, exporter });
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443' },
    });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    const as = await onboardT8As(mesh, operator, 'as-traced', { scopes: [MONITORING_EVENT] });
    await grantAccess(mesh, {
      'as-traced': {
        apis: {
          [MONITORING_EVENT]: {
            operations: ['create', 'read', 'update', 'delete'],
            categories: ['location'],
            targets: [`externalId:${UE.externalId}`],
            anyTarget: false,
            locationGranularity: 'exact',
          },
        },
      },
    });
    client = T8Client.forMesh(mesh, as);
    await client.token();
  });

  after(async function () {
    this.timeout(30_000);
    await client?.close();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
    await tracing?.shutdown();
  });

  const spansOf = (traceId: string): ReadableSpan[] => exporter.getFinishedSpans().filter(s => s.spanContext().traceId === traceId);
  const named = (spans: readonly ReadableSpan[], name: string): ReadableSpan[] => spans.filter(s => s.name === name);
  const one = (spans: readonly ReadableSpan[], name: string): ReadableSpan => {
    const found = named(spans, name);
    expect(found, `${name} in ${spans.map(s => s.name).join(', ')}`).to.have.length(1);
    return found[0];
  };
  /** Spans end asynchronously after the answer: wait for the request's server span to be exported. */
  const untilEnded = async (traceId: string, name: string): Promise<void> => {
    for (let i = 0; i < 200 && named(spansOf(traceId), name).length === 0; i++) await new Promise(r => setImmediate(r));
  };

  it('follows a signed request through every check and hop in one trace, its logs and audit carrying the trace id', async () => {
    exporter.reset();
    const { prepared, reply } = await client.call({
      method: 'POST',
      path: `${ME}/as-traced/subscriptions`,
      body: { externalId: UE.externalId, notificationDestination: RECEIVER, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 10 },
    });
    expect(reply.status, reply.text).to.equal(201);
    const traceId = prepared.traceId;
    await untilEnded(traceId, 'T8 POST');
    await untilEnded(traceId, DECIDE);
    const spans = spansOf(traceId);

    // The edge's span continues the AS's traceparent; each check is its child.
    const edge = one(spans, 'T8 POST');
    expect(edge.kind).to.equal(SpanKind.SERVER);
    expect(edge.attributes['http.response.status_code']).to.equal(201);
    for (const check of EDGE_CHECKS) expect(one(spans, check).parentSpanContext?.spanId, check).to.equal(edge.spanContext().spanId);
    // The streamed hops carry the trace per message; the unary Decide carries it in metadata.
    const replay = one(spans, REPLAY);
    expect(replay.kind).to.equal(SpanKind.SERVER);
    expect(replay.attributes['aese.service']).to.equal('replay-guard');
    expect(replay.attributes['aese.stream']).to.equal('aese.replay_guard.v1.ReplayGuardService/CheckAndRecordStream');
    expect(replay.parentSpanContext?.spanId).to.equal(one(spans, 't8.replay').spanContext().spanId);
    const invoke = one(spans, INVOKE);
    expect(invoke.attributes['aese.service']).to.equal('capability-exposure');
    expect(invoke.parentSpanContext?.spanId).to.equal(one(spans, 't8.invoke').spanContext().spanId);
    const decide = one(spans, DECIDE);
    expect(decide.attributes['aese.service']).to.equal('authorization');
    expect(decide.attributes['aese.caller']).to.equal(mesh.id('capability-exposure'));
    expect(decide.parentSpanContext?.spanId).to.equal(invoke.spanContext().spanId);
    expect(
      spans.every(s => s.status.code !== SpanStatusCode.ERROR),
      'no span failed',
    ).to.equal(true);

    // Exactly one trace for the request: no span of these names in any other trace.
    const hopNames = new Set([...EDGE_CHECKS, 'T8 POST', REPLAY, INVOKE, DECIDE]);
    const traces = new Set(
      exporter
        .getFinishedSpans()
        .filter(s => hopNames.has(s.name))
        .map(s => s.spanContext().traceId),
    );
    expect([...traces]).to.deep.equal([traceId]);

    // capability-exposure's log line of the call carries the trace id from the active span.
    const invokeLines = mesh.logs.filter(l => l.includes('"t8 invoke"') && l.includes('"scsAsId":"as-traced"'));
    expect(invokeLines).to.have.length(1);
    expect(JSON.parse(invokeLines[0])).to.include({ traceId, service: 'capability-exposure' });
  });

  it("stops a refused request's trace at the refusing check; its log line and audit event carry the trace id the edge made", async () => {
    exporter.reset();
    // No traceparent: the edge starts the trace, and the audit trail must record that trace.
    const prepared = await client.prepare({ method: 'GET', path: `${ME}/as-other/subscriptions` });
    delete prepared.headers['traceparent'];
    const reply = await client.send(prepared);
    expect(reply.status, reply.text).to.equal(403);
    let edge: ReadableSpan | undefined;
    for (let i = 0; i < 200 && !edge; i++) {
      edge = exporter.getFinishedSpans().find(s => s.name === 'T8 GET');
      if (!edge) await new Promise(r => setImmediate(r));
    }
    expect(edge, 'the edge span').not.to.equal(undefined);
    const traceId = edge!.spanContext().traceId;
    expect(traceId).not.to.equal(prepared.traceId);
    const spans = spansOf(traceId);
    expect(edge!.attributes['aese.reason']).to.equal('SCS_AS_ID_MISMATCH');
    const route = one(spans, 't8.route');
    expect(route.status).to.deep.equal({ code: SpanStatusCode.ERROR, message: 'SCS_AS_ID_MISMATCH' });
    for (const check of ['t8.authenticate', 't8.rate-limit', 't8.body', 't8.token', 't8.signature', 't8.sign']) one(spans, check);
    // Nothing past the refusing check ran: no replay check, no Invoke, no decision, in any trace.
    for (const name of DOWNSTREAM) expect(named(exporter.getFinishedSpans(), name), name).to.have.length(0);

    const [event] = await audit.byTrace(traceId);
    expect(event).to.deep.include({ service: 'edge', action: 't8.request', reason: 'SCS_AS_ID_MISMATCH', traceId, actor: 'as-traced' });
    const refusedLines = mesh.logs.filter(l => l.includes('"t8 request refused"') && l.includes('SCS_AS_ID_MISMATCH'));
    expect(refusedLines).to.have.length(1);
    expect(JSON.parse(refusedLines[0])).to.include({ traceId });
  });
  it('carries the trace into the notification: published by capability-exposure, delivered by the edge, one trace', async () => {
    exporter.reset();
    const { prepared, reply } = await client.call({
      method: 'POST',
      path: `${ME}/as-traced/subscriptions`,
      body: { externalId: UE.externalId, notificationDestination: RECEIVER, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 10, requestTestNotification: true },
    });
    expect(reply.status, reply.text).to.equal(201);
    const traceId = prepared.traceId;
    // The TestNotification is published inside the request's Invoke and delivered (attempted) by the edge.
    await eventually(() => named(spansOf(traceId), 'deliver notification').length > 0, 10_000, 'the delivery span in the request trace');
    const spans = spansOf(traceId);
    const publish = one(spans, 'publish AESE_NOTIFICATIONS');
    expect(publish.kind).to.equal(SpanKind.PRODUCER);
    expect(publish.parentSpanContext?.spanId).to.equal(one(spans, INVOKE).spanContext().spanId);
    const deliver = named(spans, 'deliver notification')[0];
    expect(deliver.kind).to.equal(SpanKind.CLIENT);
    expect(deliver.parentSpanContext?.spanId, 'the delivery continues the signed traceparent').to.equal(publish.spanContext().spanId);
  });
});
