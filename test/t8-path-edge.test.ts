/**
 * The edges of a T8 request the signature and the listener must pin down: the signature's
 * `nonce` (T8 profile section 4: at least 128 bits, base64url), `@target-uri` as the target that
 * was sent (no normalisation between what was signed and what is routed), and a request that
 * names its authority more than once (RFC 9112 section 3.2, RFC 9113 section 8.3.1). Each refusal:
 * status, ProblemDetails, one audit event, nothing downstream (capability-exposure not called,
 * the nonce never recorded by the replay guard); each next to a request that succeeds.
 */
import { connect as tlsConnect } from 'node:tls';
import { expect } from 'chai';
import { startEdgeService } from '@aese/edge-service';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { AeseError } from '@aese/errors';
import { ReplayGuardServiceClient, Verdict } from '@aese/protos/replay-guard/v1';
import { edgeRequest, edgeRequestH2, EDGE_HOSTNAME, operatorAuthClient, t8CaPem } from './support/as-client.ts';
import type { EdgeAnswer } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { AuditReader, expectEdgeDenial, grantAccess, invokeCount, MONITORING_EVENT, onboardT8As, retraced, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';
import type { PreparedRequest, T8As, T8Reply } from './support/t8-client.ts';

const AS_ID = 'as-path';
const UE1 = simulatedUe(1);
const ME = `/3gpp-monitoring-event/v1/${AS_ID}`;
const COLLECTION = `${ME}/subscriptions`;

/** Spellings of COLLECTION that a normalising URL parser, or a lenient router, takes for it. */
const OTHER_SPELLINGS = [
  `${ME}/x/%2e%2e/subscriptions`,
  `${ME}/x/%2E%2E/subscriptions`,
  `${ME}/x/../subscriptions`,
  `${ME}/./subscriptions`,
  `/3gpp-monitoring-event/v1//${AS_ID}/subscriptions`,
  `${ME}//subscriptions`,
  `${ME}/%73ubscriptions`,
  `/3gpp-monitoring-event/v1/%61s-path/subscriptions`,
];

/** A prepared request's fields as one lower-case record of strings (for node's clients). */
function flatHeaders(p: PreparedRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.headers)) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** An answer of node's HTTP/1.1 or HTTP/2 client in the shape {@link expectEdgeDenial} reads. */
function asReply(answer: EdgeAnswer): T8Reply {
  const headers: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(answer.headers)) if (v !== undefined && !k.startsWith(':')) headers[k] = v;
  return { status: answer.status, headers, body: Buffer.from(answer.body), text: answer.body, json: <T>() => JSON.parse(answer.body) as T };
}

/** A raw HTTP/1.1 answer, read to the end of a `Connection: close` exchange. */
interface RawAnswer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

describe('T8 request edges: nonce form, @target-uri as sent, one authority', function () {
  this.timeout(30_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let replayGuard: MeshClient<ReplayGuardServiceClient>;
  let audit: AuditReader;
  let as: T8As;
  let client: T8Client;
  let port: number;

  const sub = (): Record<string, unknown> => ({
    externalId: UE1.externalId,
    notificationDestination: 'https://127.0.0.1:9443/notify',
    monitoringType: 'LOCATION_REPORTING',
    maximumNumberOfReports: 3,
  });
  const count = async (): Promise<number> => {
    const { reply } = await client.call({ method: 'GET', path: COLLECTION });
    expect(reply.status, reply.text).to.equal(200);
    return reply.json<unknown[]>().length;
  };
  /**
   * Asks the replay guard itself, as the edge does, whether a nonce is new: `accepted` means no
   * request with it was ever recorded (and records it now, so a probed nonce is spent).
   */
  const nonceWasNew = async (nonce: string): Promise<boolean> => {
    const { verdict } = await replayGuard.checkAndRecord({ scsAsId: AS_ID, nonce, created: Math.floor(Date.now() / 1000) });
    expect([Verdict.VERDICT_ACCEPTED, Verdict.VERDICT_REPLAYED]).to.include(verdict);
    return verdict === Verdict.VERDICT_ACCEPTED;
  };
  /** Sends a prepared request over HTTP/1.1 with `path` as the request-target, byte for byte. */
  const sendHttp1 = async (p: PreparedRequest, path: string): Promise<T8Reply> =>
    asReply(
      await edgeRequest({ port, ca: t8CaPem(mesh), client: as, method: p.method, path, headers: { ...flatHeaders(p), host: EDGE_HOSTNAME }, ...(p.body ? { body: p.body } : {}) }),
    );
  /** Sends a prepared request over HTTP/2 with `path` as `:path`, byte for byte. */
  const sendHttp2 = async (p: PreparedRequest, path: string, extra: Record<string, string> = {}): Promise<T8Reply> =>
    asReply(
      await edgeRequestH2({
        port,
        ca: t8CaPem(mesh),
        client: as,
        method: p.method,
        path,
        headers: { ...flatHeaders(p), ':authority': EDGE_HOSTNAME, ...extra },
        ...(p.body ? { body: p.body } : {}),
      }),
    );

  /**
   * One HTTP/1.1 request written by hand over mTLS (node's clients send one Host line and an
   * origin-form target only): `head` is the request line and fields, CRLF-separated.
   */
  const rawHttp1 = (head: string, body: Buffer | undefined): Promise<RawAnswer> =>
    new Promise((resolve, reject) => {
      const socket = tlsConnect({
        host: '127.0.0.1',
        port,
        servername: EDGE_HOSTNAME,
        ca: t8CaPem(mesh),
        cert: as.certPem,
        key: as.keyPem,
        ALPNProtocols: ['http/1.1'],
        minVersion: 'TLSv1.3',
      });
      const chunks: Buffer[] = [];
      socket.setTimeout(5_000, () => socket.destroy(new Error('no answer in time')));
      // Written, not ended: the server closes after its answer (`connection: close`).
      socket.on('secureConnect', () => socket.write(Buffer.concat([Buffer.from(`${head}\r\nconnection: close\r\n\r\n`), body ?? Buffer.alloc(0)])));
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('error', reject);
      socket.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        const split = text.indexOf('\r\n\r\n');
        if (split < 0) return reject(new Error(`no HTTP answer: ${JSON.stringify(text.slice(0, 200))}`));
        const [statusLine, ...lines] = text.slice(0, split).split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines) headers[line.slice(0, line.indexOf(':')).toLowerCase()] = line.slice(line.indexOf(':') + 1).trim();
        resolve({ status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(statusLine)?.[1]), headers, body: text.slice(split + 4) });
      });
    });
  /** The request line and fields of a prepared request, with the given Host lines. */
  const rawHead = (p: PreparedRequest, target: string, hosts: readonly string[]): string => {
    const fields = Object.entries(flatHeaders(p)).map(([k, v]) => `${k}: ${v}`);
    if (p.body) fields.push(`content-length: ${p.body.length}`);
    return [`${p.method} ${target} HTTP/1.1`, ...hosts.map(h => `host: ${h}`), ...fields].join('\r\n');
  };
  /** A 400 for a malformed authority: unsigned ProblemDetails, one audit event, nothing run. */
  const expectAuthorityRefusal = async (
    answer: { status: number; headers: Record<string, unknown>; body: string },
    p: PreparedRequest,
    reason: string,
    action = 't8.request',
  ): Promise<void> => {
    expect(answer.status, answer.body).to.equal(400);
    expect(answer.headers['content-type']).to.equal('application/problem+json');
    expect(JSON.parse(answer.body)).to.include({ status: 400 });
    expect(answer.body).not.to.match(/\n\s+at |node:internal/);
    expect(answer.headers['signature'], 'a refusal before the AS is known is not signed').to.equal(undefined);
    expect(answer.headers['signature-input']).to.equal(undefined);
    await new Promise(r => setTimeout(r, 100));
    const events = (await audit.byTrace(p.traceId)).filter(e => e.service === 'edge');
    expect(events).to.have.length(1);
    expect(events[0]).to.deep.include({ action, decision: 'deny', reason, actor: 'unknown' });
  };

  before(async function () {
    this.timeout(90_000);
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443' },
    });
    port = mesh.ports['edge']!;
    operator = operatorAuthClient(mesh);
    replayGuard = createMeshClient(ReplayGuardServiceClient, { address: mesh.env['REPLAY_GUARD_ADDR'], tls: mesh.tls('edge'), serverId: mesh.id('replay-guard') });
    audit = await AuditReader.open(mesh);
    as = await onboardT8As(mesh, operator, AS_ID, { scopes: [MONITORING_EVENT] });
    await grantAccess(mesh, {
      [AS_ID]: {
        apis: { [MONITORING_EVENT]: { operations: ['create', 'read', 'delete'], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false } },
      },
    });
    client = T8Client.forMesh(mesh, as);
    await client.token();
  });

  after(async function () {
    this.timeout(30_000);
    await client?.close();
    await audit?.close();
    replayGuard?.close();
    operator?.close();
    await mesh?.stop();
  });

  describe('nonce: unpadded base64url of at least 128 bits, checked before the replay guard', () => {
    it('a 96-bit nonce, one with ":/=", a padded one, a base64 one and an oversized one get 401 INVALID_NONCE with Accept-Signature; the edge refuses them before the guard, which refuses them too; a 128-bit nonce succeeds', async () => {
      const bad: [string, string][] = [
        ['96 bits', 'AAECAwQFBgcICQoL'],
        ['":/=" characters', 'c2lnbmF0dXJl:bm9uY2U/dmFsdWU=Zm9y'],
        ['padding', 'AAECAwQFBgcICQoLDA0ODw=='],
        ['base64 "+"', 'AAECAwQFBgcICQoLDA0OD+8'],
        ['129 characters', 'A'.repeat(129)],
      ];
      for (const [what, nonce] of bad) {
        const subscriptions = await count();
        const invoked = invokeCount(mesh, AS_ID);
        const out = await client.call({ method: 'POST', path: COLLECTION, body: sub(), sign: { nonce } });
        await expectEdgeDenial(client, audit, out, { status: 401, cause: 'INVALID_NONCE', reason: 'SIGNATURE_NONCE_INVALID' });
        const problem = out.reply.json<{ detail: string }>();
        expect(problem.detail, what).to.match(/base64url.*128 bits/);
        expect(out.reply.headers['accept-signature'], what).to.equal('sig1=("@method" "@target-uri" "authorization" "content-digest" "content-type");created;nonce;keyid');
        expect(out.reply.headers['www-authenticate']).to.equal('Bearer realm="scef", error="invalid_request"');
        expect(invokeCount(mesh, AS_ID), what).to.equal(invoked);
        expect(await count(), what).to.equal(subscriptions);
        // The guard applies the same rule (defence in depth): it refuses the nonce outright, so the
        // edge's reason above (SIGNATURE_NONCE_INVALID, not REPLAY_INVALID_INPUT) shows it never asked.
        const guarded = await replayGuard.checkAndRecord({ scsAsId: AS_ID, nonce, created: Math.floor(Date.now() / 1000) }).then(
          () => undefined,
          (err: unknown) => err,
        );
        expect(guarded, `${what}: the replay guard took the nonce`).to.be.instanceOf(AeseError);
        expect((guarded as AeseError).code, what).to.equal('INVALID_INPUT');
      }
      // Controls: a 128-bit and a 256-bit nonce are accepted, and recorded by the guard (the probe sees it).
      for (const nonce of ['AAECAwQFBgcICQoLDA0ODw', Buffer.alloc(32, 9).toString('base64url')]) {
        const ok = await client.call({ method: 'POST', path: COLLECTION, body: sub(), sign: { nonce } });
        expect(ok.reply.status, ok.reply.text).to.equal(201);
        expect(await nonceWasNew(nonce), 'the accepted nonce was recorded').to.equal(false);
      }
    });
  });

  describe('@target-uri: the target exactly as sent', () => {
    for (const [version, send] of [
      ['HTTP/1.1 request-target', (p: PreparedRequest, path: string) => sendHttp1(p, path)],
      ['HTTP/2 :path', (p: PreparedRequest, path: string) => sendHttp2(p, path)],
    ] as const) {
      it(`${version}: a request signed over the collection and sent with another spelling of it gets 401; nothing runs; the signed spelling succeeds`, async () => {
        const original = await client.prepare({ method: 'POST', path: COLLECTION, body: sub() });
        for (const spelling of OTHER_SPELLINGS) {
          const moved = retraced(original);
          const subscriptions = await count();
          const invoked = invokeCount(mesh, AS_ID);
          const reply = await send(moved, spelling);
          await expectEdgeDenial(client, audit, { prepared: moved, reply }, { status: 401, cause: 'INVALID_SIGNATURE', reason: 'SIGNATURE_SIGNATURE_INVALID' });
          expect(invokeCount(mesh, AS_ID), spelling).to.equal(invoked);
          expect(await count(), spelling).to.equal(subscriptions);
        }
        // Every copy carried the original's nonce: it succeeding now shows none reached the guard.
        const before = await count();
        const reply = await send(retraced(original), COLLECTION);
        expect(reply.status, reply.text).to.equal(201);
        expect(await count()).to.equal(before + 1);
      });
    }

    it('a target with dot segments, signed and sent as such, verifies but routes nowhere (404): no route resolves it to the collection, nothing runs', async () => {
      for (const spelling of [`${ME}/x/%2e%2e/subscriptions`, `${ME}/x/../subscriptions`, `${ME}//subscriptions`]) {
        const p = await client.prepare({ method: 'GET', path: spelling });
        const invoked = invokeCount(mesh, AS_ID);
        await expectEdgeDenial(client, audit, { prepared: p, reply: await sendHttp1(p, spelling) }, { status: 404, cause: 'RESOURCE_NOT_FOUND', reason: 'NO_SUCH_API_ROUTE' });
        expect(invokeCount(mesh, AS_ID), spelling).to.equal(invoked);
        expect(await nonceWasNew(p.nonce!), `${spelling}: a request that routes nowhere spent its nonce`).to.equal(true);
      }
      // Control: the collection, signed and sent by node's HTTP/1.1 client the same way.
      const p = await client.prepare({ method: 'GET', path: COLLECTION });
      const reply = await sendHttp1(p, COLLECTION);
      expect(reply.status, reply.text).to.equal(200);
    });
  });

  describe('one authority: exactly one Host, agreeing with :authority and the target (400 otherwise)', () => {
    it('HTTP/1.1 with two Host lines (equal or not) gets 400, unsigned and audited, nothing runs; one Host line succeeds', async () => {
      const original = await client.prepare({ method: 'POST', path: COLLECTION, body: sub() });
      for (const hosts of [
        [EDGE_HOSTNAME, EDGE_HOSTNAME],
        [EDGE_HOSTNAME, 'other.example'],
        ['other.example', EDGE_HOSTNAME],
      ]) {
        const copy = retraced(original);
        const subscriptions = await count();
        const invoked = invokeCount(mesh, AS_ID);
        await expectAuthorityRefusal(await rawHttp1(rawHead(copy, COLLECTION, hosts), copy.body), copy, 'HOST_REPEATED');
        expect(invokeCount(mesh, AS_ID), hosts.join(' + ')).to.equal(invoked);
        expect(await count()).to.equal(subscriptions);
      }
      // Control: the same request with one Host line, written the same way, is executed (and its nonce was unused).
      const before = await count();
      const ok = await rawHttp1(rawHead(retraced(original), COLLECTION, [EDGE_HOSTNAME]), original.body);
      expect(ok.status, ok.body).to.equal(201);
      expect(ok.headers['signature-input']).to.match(/^sig1=/);
      expect(await count()).to.equal(before + 1);
    });

    it('HTTP/1.1 with an absolute-form target naming another authority than Host gets 400, audited; without Host, 400; nothing runs', async () => {
      const p = await client.prepare({ method: 'GET', path: COLLECTION });
      const invoked = invokeCount(mesh, AS_ID);
      // No Host: node's HTTP/1.1 parser refuses it before there is a request to audit.
      const hostless = await rawHttp1(rawHead(p, COLLECTION, []), undefined);
      expect(hostless.status, hostless.body).to.equal(400);
      expect(hostless.headers['content-type']).to.equal('application/problem+json');
      const other = retraced(p);
      // An absolute target is no T8 path (the edge serves origin-form only), hence `http.request`.
      await expectAuthorityRefusal(await rawHttp1(rawHead(other, `https://other.example${COLLECTION}`, [EDGE_HOSTNAME]), undefined), other, 'HOST_TARGET_CONFLICT', 'http.request');
      const fronted = retraced(p);
      await expectAuthorityRefusal(
        await rawHttp1(rawHead(fronted, `https://${EDGE_HOSTNAME}${COLLECTION}`, ['other.example']), undefined),
        fronted,
        'HOST_TARGET_CONFLICT',
        'http.request',
      );
      expect(invokeCount(mesh, AS_ID)).to.equal(invoked);
      expect(await nonceWasNew(p.nonce!), 'a refused request spent its nonce').to.equal(true);
    });

    it('HTTP/2 with a host other than :authority gets 400, unsigned and audited, nothing runs; a host equal to :authority succeeds', async () => {
      const original = await client.prepare({ method: 'POST', path: COLLECTION, body: sub() });
      for (const host of ['other.example', `${EDGE_HOSTNAME}:8443`]) {
        const copy = retraced(original);
        const subscriptions = await count();
        const invoked = invokeCount(mesh, AS_ID);
        const reply = await sendHttp2(copy, COLLECTION, { host });
        await expectAuthorityRefusal({ status: reply.status, headers: reply.headers, body: reply.text }, copy, 'HOST_AUTHORITY_CONFLICT');
        expect(invokeCount(mesh, AS_ID), host).to.equal(invoked);
        expect(await count()).to.equal(subscriptions);
      }
      const before = await count();
      const ok = await sendHttp2(retraced(original), COLLECTION, { host: EDGE_HOSTNAME });
      expect(ok.status, ok.text).to.equal(201);
      expect(await count()).to.equal(before + 1);
    });
  });
});
