/**
 * Issue 3, first bullet: an AS built on independent libraries (oauth4webapi, http-message-signatures,
 * jose) uses MonitoringEvent through the edge end to end; every body validates against the
 * official 3GPP schemas, every response signature verifies with the published JWKS.
 */
import { expect } from 'chai';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { createMeshClient } from '@aese/grpc-client';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8ApiFile, T8Schemas } from '@aese/t8-openapi';
import { edgeRequestH2, operatorAuthClient, t8CaPem } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { AS_SESSION_WITH_QOS, AuditReader, grantAccess, invokeCount, MONITORING_EVENT, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';
import type { PreparedRequest, T8As, T8Reply } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUe(1);
const UE2 = simulatedUe(2);
/** An HTTPS receiver on loopback, admitted by the operator allow-list (the notification seam). */
const RECEIVER = 'https://127.0.0.1:9443/notify';
const STACK_TRACE = /\n\s+at |Error:|node:internal|\.ts:\d+/;

describe('T8 end to end: MonitoringEvent through the edge with independent AS libraries', function () {
  this.timeout(40_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let schemas: T8Schemas;
  let audit: AuditReader;
  let alpha: T8As;
  let obliged: T8As;
  let keyless: T8As;
  let legacy: T8As;
  let client: T8Client;
  let obligedClient: T8Client;
  let keylessClient: T8Client;
  let legacyClient: T8Client;
  const tokens: string[] = [];
  const nonces: string[] = [];

  const valid = (api: T8ApiFile, schema: string, body: unknown, direction: 'request' | 'response'): void => {
    const v = schemas.validator(api, schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const subscription = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
    externalId: UE1.externalId,
    notificationDestination: RECEIVER,
    monitoringType: 'LOCATION_REPORTING',
    maximumNumberOfReports: 10,
    ...extra,
  });
  /** Sends, checks the SCEF signature and the JSON/problem body against the schemas. */
  const exchange = async (c: T8Client, spec: Parameters<T8Client['prepare']>[0]): Promise<{ prepared: PreparedRequest; reply: T8Reply }> => {
    const out = await c.call(spec);
    if (out.prepared.nonce) nonces.push(out.prepared.nonce);
    await c.verifyResponse(out.reply, out.prepared);
    expect(out.reply.headers['cache-control']).to.equal('no-store');
    if (out.reply.headers['content-type'] === 'application/problem+json') {
      valid('common-data', 'ProblemDetails', out.reply.json(), 'response');
      expect(out.reply.text).not.to.match(STACK_TRACE);
    }
    return out;
  };
  const listIds = async (c: T8Client, scsAsId: string): Promise<string[]> => {
    const { reply } = await exchange(c, { method: 'GET', path: `${ME}/${scsAsId}/subscriptions` });
    expect(reply.status, reply.text).to.equal(200);
    valid('monitoring-event', `#/paths/~1{scsAsId}~1subscriptions/get/responses/200/content/application~1json/schema`, reply.json(), 'response');
    return reply.json<{ self: string }[]>().map(s => s.self.split('/').pop()!);
  };

  before(async function () {
    this.timeout(90_000);
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443' },
    });
    operator = operatorAuthClient(mesh);
    audit = await AuditReader.open(mesh);
    alpha = await onboardT8As(mesh, operator, 'as-e2e', { scopes: [MONITORING_EVENT, AS_SESSION_WITH_QOS] });
    obliged = await onboardT8As(mesh, operator, 'as-e2e-obliged', { scopes: [MONITORING_EVENT], alg: 'ed25519' });
    keyless = await onboardT8As(mesh, operator, 'as-e2e-keyless', { scopes: [MONITORING_EVENT], encryption: false });
    legacy = await onboardT8As(mesh, operator, 'as-e2e-legacy', { scopes: [MONITORING_EVENT], profile: 'optional' });
    const location = (targets: string[], extra: Record<string, unknown> = {}) => ({
      apis: {
        [MONITORING_EVENT]: {
          operations: ['create', 'read', 'update', 'delete', 'notify'],
          categories: ['location', 'reachability', 'connectivity', 'roaming'],
          targets,
          anyTarget: false,
          locationGranularity: 'exact' as const,
          ...extra,
        },
      },
    });
    await grantAccess(mesh, {
      'as-e2e': location([`externalId:${UE1.externalId}`, `msisdn:${UE1.msisdn}`]),
      'as-e2e-obliged': location([`externalId:${UE2.externalId}`], { encryptCategories: ['location'] }),
      'as-e2e-keyless': location([`externalId:${UE2.externalId}`], { encryptCategories: ['location'] }),
      'as-e2e-legacy': location([`externalId:${UE2.externalId}`]),
    });
    client = T8Client.forMesh(mesh, alpha);
    obligedClient = T8Client.forMesh(mesh, obliged);
    keylessClient = T8Client.forMesh(mesh, keyless);
    legacyClient = T8Client.forMesh(mesh, legacy);
    for (const c of [client, obligedClient, keylessClient, legacyClient]) tokens.push(await c.token());
  });

  after(async function () {
    this.timeout(30_000);
    for (const c of [client, obligedClient, keylessClient, legacyClient]) await c?.close();
    await audit?.close();
    operator?.close();
    await mesh?.stop();
  });

  it('creates a LOCATION_REPORTING subscription (201 + Location), reads, lists and deletes it; every body fits the 3GPP schemas and every answer is signed', async () => {
    const body = subscription();
    valid('monitoring-event', 'MonitoringEventSubscription', body, 'request');
    const created = await exchange(client, { method: 'POST', path: `${ME}/as-e2e/subscriptions`, body });
    expect(created.reply.status, created.reply.text).to.equal(201);
    expect(created.reply.headers['content-type']).to.equal('application/json');
    valid('monitoring-event', 'MonitoringEventSubscription', created.reply.json(), 'response');
    const location = created.reply.headers['location'] as string;
    expect(location).to.match(new RegExp(`^${T8_ISSUER}${ME}/as-e2e/subscriptions/[0-9a-f-]{36}$`));
    expect(created.reply.json<{ self: string }>().self).to.equal(location);
    const id = location.split('/').pop()!;
    // The verification is real: a changed status or body does not verify.
    const err1 = await client.verifyResponse({ ...created.reply, status: 200 }, created.prepared).catch((e: unknown) => e);
    expect(err1).to.be.instanceOf(Error);
    const forged = Buffer.from(created.reply.text.replace(UE1.externalId, UE2.externalId));
    const err2 = await client.verifyResponse({ ...created.reply, body: forged, text: forged.toString() }, created.prepared).catch((e: unknown) => e);
    expect((err2 as Error).message).to.match(/Content-Digest/);

    const read = await exchange(client, { method: 'GET', path: `${ME}/as-e2e/subscriptions/${id}` });
    expect(read.reply.status).to.equal(200);
    valid('monitoring-event', 'MonitoringEventSubscription', read.reply.json(), 'response');
    expect(read.reply.json()).to.deep.include({ monitoringType: 'LOCATION_REPORTING', externalId: UE1.externalId });
    expect(await listIds(client, 'as-e2e')).to.include(id);

    const removed = await exchange(client, { method: 'DELETE', path: `${ME}/as-e2e/subscriptions/${id}` });
    expect(removed.reply.status).to.equal(204);
    expect(removed.reply.body.length).to.equal(0);
    expect(await listIds(client, 'as-e2e')).not.to.include(id);
  });

  it('a one-time location report asked for with Accept: application/jose comes as a compact JWE that jose decrypts to a schema-valid report', async () => {
    const body = subscription({ maximumNumberOfReports: 1 });
    const { reply } = await exchange(client, { method: 'POST', path: `${ME}/as-e2e/subscriptions`, body, accept: 'application/jose' });
    expect(reply.status, reply.text).to.equal(200);
    expect(reply.headers['content-type']).to.equal('application/jose');
    expect(reply.text.split('.')).to.have.length(5);
    const { json, header } = await client.decrypt(reply);
    expect(header).to.deep.include({ alg: 'ECDH-ES+A256KW', enc: 'A256GCM', cty: 'application/json', kid: 'as-e2e-enc-1' });
    valid('monitoring-event', 'MonitoringEventReport', json, 'response');
    const report = json as { externalId: string; monitoringType: string; locationInfo: Record<string, unknown> };
    expect(report.externalId).to.equal(UE1.externalId);
    expect(report.monitoringType).to.equal('LOCATION_REPORTING');
    expect(report.locationInfo).to.have.property('cellId');
    // Control: the same request without Accept gets the report in clear.
    const clear = await exchange(client, { method: 'POST', path: `${ME}/as-e2e/subscriptions`, body });
    expect(clear.reply.status).to.equal(200);
    expect(clear.reply.headers['content-type']).to.equal('application/json');
    valid('monitoring-event', 'MonitoringEventReport', clear.reply.json(), 'response');
  });

  it('an encrypt-response obligation from policy encrypts without being asked (Ed25519-signing AS); the decrypted body is the T8 body', async () => {
    const { reply } = await exchange(obligedClient, { method: 'POST', path: `${ME}/as-e2e-obliged/subscriptions`, body: subscription({ externalId: UE2.externalId }) });
    expect(reply.status, reply.text).to.equal(201);
    expect(reply.headers['content-type']).to.equal('application/jose');
    const { json } = await obligedClient.decrypt(reply);
    valid('monitoring-event', 'MonitoringEventSubscription', json, 'response');
    expect((json as { self: string }).self).to.equal(reply.headers['location']);
  });

  it('Accept: application/jose without a registered encryption key gets 406 before anything runs; obliged encryption without a key never sends plaintext (403)', async () => {
    const before = invokeCount(mesh, 'as-e2e-keyless');
    const asked = await exchange(keylessClient, { method: 'GET', path: `${ME}/as-e2e-keyless/subscriptions`, accept: 'application/jose' });
    expect(asked.reply.status).to.equal(406);
    expect(asked.reply.json()).to.include({ cause: 'ENCRYPTION_KEY_NOT_REGISTERED' });
    expect(invokeCount(mesh, 'as-e2e-keyless')).to.equal(before);
    const [event] = await audit.byTrace(asked.prepared.traceId);
    expect(event).to.deep.include({ service: 'edge', actor: 'as-e2e-keyless', action: 't8.request', decision: 'deny', reason: 'ENCRYPTION_KEY_NOT_REGISTERED' });

    const obligedReply = await exchange(keylessClient, {
      method: 'POST',
      path: `${ME}/as-e2e-keyless/subscriptions`,
      body: subscription({ externalId: UE2.externalId, maximumNumberOfReports: 1 }),
    });
    expect(obligedReply.reply.status).to.equal(403);
    expect(obligedReply.reply.headers['content-type']).to.equal('application/problem+json');
    expect(obligedReply.reply.text).not.to.include('locationInfo');
    expect(obligedReply.reply.text).not.to.include(UE2.externalId);
    expect((await audit.byTrace(obligedReply.prepared.traceId))[0]).to.deep.include({ reason: 'ENCRYPTION_OBLIGED_WITHOUT_KEY' });
    // Control: a request that carries no obliged category (an empty list) is answered in clear.
    const list = await exchange(keylessClient, { method: 'GET', path: `${ME}/as-e2e-keyless/subscriptions` });
    expect(list.reply.status).to.equal(200);
  });

  it('the response key is delegated to the edge and published: its kid is in /.well-known/jwks.json and in the crypto JWKS as a message-signing key', async () => {
    const { reply, prepared } = await exchange(client, { method: 'GET', path: `${ME}/as-e2e/subscriptions` });
    const kid = await client.verifyResponse(reply, prepared);
    const published = await client.publishedKeys(true);
    const jwk = published.find(k => k.kid === kid);
    expect(jwk).to.include({ use: 'sig', alg: 'ES256', kty: 'EC', crv: 'P-256' });
    expect(jwk).not.to.have.property('d');
    const crypto = createMeshClient(CryptoServiceClient, { address: mesh.env['CRYPTO_ADDR'], tls: mesh.tls('operator'), serverId: mesh.id('crypto') });
    try {
      const keys = (await crypto.getJwks({})).keys;
      expect(keys.find(k => k.kid === kid)?.purpose).to.equal(KeyPurpose.KEY_PURPOSE_MESSAGE_SIGNING);
    } finally {
      crypto.close();
    }
  });

  it('refusals are signed too: a 404 from capability-exposure and a 401 from the edge verify against the JWKS, without covering a bad request signature', async () => {
    const missing = await exchange(client, { method: 'GET', path: `${ME}/as-e2e/subscriptions/6a1f6f4e-2a8e-4b7e-9d0e-3b0f1c2d3e4f` });
    expect(missing.reply.status).to.equal(404);
    expect(missing.reply.headers['signature-input']).to.match(/"signature";req;key="sig1"/);
    const unsigned = await client.call({ method: 'GET', path: `${ME}/as-e2e/subscriptions`, sign: false });
    expect(unsigned.reply.status).to.equal(401);
    await client.verifyResponse(unsigned.reply, unsigned.prepared);
    expect(unsigned.reply.headers['signature-input']).not.to.match(/;req/);
    expect(unsigned.reply.headers['accept-signature']).to.match(/^sig1=\("@method" "@target-uri" "authorization"\);created;nonce;keyid$/);
  });

  it('HTTP/2: a signed POST works the same way (ALPN h2) and its answer verifies', async () => {
    const prepared = await client.prepare({ method: 'POST', path: `${ME}/as-e2e/subscriptions`, body: subscription() });
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(prepared.headers)) headers[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    const answer = await edgeRequestH2({
      port: mesh.ports['edge'],
      ca: t8CaPem(mesh),
      client: alpha,
      method: 'POST',
      path: new URL(prepared.url).pathname,
      headers: { ...headers, ':authority': 'localhost' },
      body: prepared.body!,
    });
    expect(answer.status, answer.body).to.equal(201);
    expect(answer.alpn).to.equal('h2');
    const reply: T8Reply = {
      status: answer.status,
      headers: answer.headers as Record<string, string>,
      body: Buffer.from(answer.body),
      text: answer.body,
      json: <T>() => JSON.parse(answer.body) as T,
    };
    await client.verifyResponse(reply, prepared);
    valid('monitoring-event', 'MonitoringEventSubscription', reply.json(), 'response');
  });

  it('signature profile optional (legacy AS): an unsigned request is served, a signed one is still verified (a tampered one is refused)', async () => {
    const unsigned = await exchange(legacyClient, { method: 'GET', path: `${ME}/as-e2e-legacy/subscriptions`, sign: false });
    expect(unsigned.reply.status).to.equal(200);
    const prepared = await legacyClient.prepare({ method: 'GET', path: `${ME}/as-e2e-legacy/subscriptions` });
    const tampered = await legacyClient.send({ ...prepared, url: `${prepared.url}?x=1` });
    expect(tampered.status).to.equal(401);
    expect(tampered.json()).to.include({ cause: 'INVALID_SIGNATURE' });
    const ok = await legacyClient.send(prepared);
    expect(ok.status).to.equal(200);
    // The default profile refuses the same unsigned request.
    const required = await client.call({ method: 'GET', path: `${ME}/as-e2e/subscriptions`, sign: false });
    expect(required.reply.status).to.equal(401);
    expect(required.reply.json()).to.include({ cause: 'SIGNATURE_REQUIRED' });
  });

  it('no access token, nonce, signature or UE identifier appears in any service log', () => {
    const logs = mesh.logs.join('\n');
    expect(logs).to.include('"t8 invoke"');
    for (const t of tokens) {
      expect(logs).not.to.include(t);
      expect(logs).not.to.include(t.split('.')[2]);
    }
    for (const n of nonces) expect(logs).not.to.include(n);
    for (const ue of [UE1.externalId, UE1.msisdn, UE2.externalId]) expect(logs).not.to.include(ue);
  });
});
