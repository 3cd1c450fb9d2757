/**
 * Issue 7, control events through a running mesh (secured NATS): notification requests are
 * signed by capability exposure and verified by the edge before anything happens; a deleted
 * revocation (mid-stream or the last one) makes the services refuse to serve instead of
 * forgetting it; token revocations leave the control state with the tokens they revoke.
 */
import { expect } from 'chai';
import { generateKeyPairSync, randomUUID, sign, X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { NatsConnection } from 'nats';
import { startEdgeService } from '@aese/edge-service';
import type { AeseError } from '@aese/errors';
import {
  CONTROL_STREAM,
  CONTROL_SUBJECTS,
  eventSigningJwks,
  notificationSubject,
  signNotification,
  TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT,
  TOKEN_REVOCATIONS_STREAM,
  TOKEN_REVOCATIONS_SUBJECT,
} from '@aese/events';
import type { EventSigner } from '@aese/events';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { createSelfSignedCa, issueCertificate } from '@aese/pki';
import { AuthenticationServiceClient, RevocationKind } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { NotificationRequested, SignedEvent } from '@aese/protos/events/v1';
import { eventually, tempDir } from '@aese/testing';
import { operatorAuthClient } from './support/as-client.ts';
import { healthCheck, meshCredentials } from './support/grpc-probes.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { AuditReader, grantAccess, MONITORING_EVENT, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE1 = simulatedUe(1);
const GRANT = { operations: ['read'], categories: ['location'], targets: [`externalId:${UE1.externalId}`], anyTarget: false };

const health = (mesh: TestMesh, service: 'authentication') =>
  healthCheck(mesh.env[`${service.toUpperCase()}_ADDR`], meshCredentials(mesh.tls('edge'))).catch((e: Error) => `error: ${e.message}`);

/** A signer as capability exposure has it: crypto's Sign with the event-signing key, over mTLS as capability exposure. */
function capabilityExposureSigner(crypto: MeshClient<CryptoServiceClient>): EventSigner {
  return {
    sign: async data => {
      const out = await crypto.sign({ purpose: KeyPurpose.KEY_PURPOSE_EVENT_SIGNING, data: Buffer.from(data) });
      return { kid: out.kid, signature: out.signature };
    },
  };
}

describe('control events through a running mesh (issue 7)', function () {
  this.timeout(180_000);

  describe('notification requests and token revocations', () => {
    let mesh: TestMesh;
    let operator: MeshClient<AuthenticationServiceClient>;
    let audit: AuditReader;
    let receiver: Server;
    let receiverPort: number;
    let capexCrypto: MeshClient<CryptoServiceClient>;
    const dir = tempDir('aese-control-receiver');
    const received: string[] = [];
    const clients: T8Client[] = [];

    before(async function () {
      this.timeout(120_000);
      const ca = await createSelfSignedCa('AS receiver CA');
      const cert = await issueCertificate(ca, { subject: 'CN=localhost', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], extendedKeyUsages: ['serverAuth'] });
      writeFileSync(join(dir.path, 'receiver-ca.pem'), ca.certPem);
      mesh = await startTestMesh({
        edge: startEdgeService,
        extraEnv: {
          AESE_ISSUER: T8_ISSUER,
          SIM_TICK_MS: '0',
          NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1/32',
          // The receiver listens on a port the OS picks: allow the unprivileged ones.
          NOTIFICATION_DESTINATION_PORTS: '1024-65535',
          NOTIFICATION_CA_FILE: join(dir.path, 'receiver-ca.pem'),
          // Short-lived tokens, and revocations kept for their lifetime + the 30 s leeway.
          TOKEN_LIFETIME_S: '5',
          TOKEN_REVOCATION_RETENTION_S: '35',
          // One AS makes the 2,000 token and revocation requests: lift the per-AS OAuth rate limit.
          EDGE_OAUTH_RATE_LIMIT_PER_S: '100000',
          EDGE_OAUTH_RATE_LIMIT_BURST: '100000',
        },
      });
      receiver = createServer(
        { cert: cert.certPem, key: cert.keyPem, ca: readFileSync(mesh.layout.t8Ca.cert, 'utf8'), requestCert: true, rejectUnauthorized: true },
        (req, res) => {
          received.push(String(req.url));
          req.resume();
          req.on('end', () => {
            res.statusCode = 204;
            res.end();
          });
        },
      );
      await new Promise<void>(r => receiver.listen(0, '127.0.0.1', r));
      receiverPort = (receiver.address() as AddressInfo).port;
      operator = operatorAuthClient(mesh);
      audit = await AuditReader.open(mesh);
      capexCrypto = createMeshClient(CryptoServiceClient, { address: mesh.env['CRYPTO_ADDR'], tls: mesh.tls('capability-exposure'), serverId: mesh.id('crypto') });
    });
    after(async function () {
      this.timeout(30_000);
      for (const c of clients) await c.close();
      capexCrypto?.close();
      await audit?.close();
      operator?.close();
      receiver?.close();
      await mesh?.stop();
      dir.remove();
    });

    const onboard = async (scsAsId: string): Promise<T8Client> => {
      const as = await onboardT8As(mesh, operator, scsAsId, { scopes: [MONITORING_EVENT] });
      await grantAccess(mesh, { [scsAsId]: { apis: { [MONITORING_EVENT]: GRANT } } });
      const c = T8Client.forMesh(mesh, as);
      clients.push(c);
      return c;
    };
    const request = (scsAsId: string, path: string, notificationId = randomUUID()) => {
      const createdAtMs = Date.now();
      const payload = NotificationRequested.encode({
        notificationId,
        scsAsId,
        api: MONITORING_EVENT,
        subscriptionId: 'sub-1',
        destination: `https://127.0.0.1:${receiverPort}${path}`,
        body: Buffer.from(JSON.stringify({ subscription: 'x', monitoringType: 'LOCATION_REPORTING' })),
        obligations: [],
        obligationDetails: [],
        createdAtMs,
        traceparent: '',
      }).finish();
      return { notificationId, createdAtMs, payload };
    };

    it('attack: a NotificationRequested published straight to the notification subject is not delivered; one signed by capability exposure is', async () => {
      const victim = 'ctl-notify-a';
      const other = 'ctl-notify-b';
      await onboard(victim);
      await onboard(other);
      // The insider holds capability exposure's NATS credentials (NATS lets it publish there),
      // not its crypto signing right.
      const nc: NatsConnection = await mesh.natsConnect('capability-exposure');
      try {
        const js = nc.jetstream();
        const forged: string[] = [];
        // 1. The issue's attack: a bare request, no signature.
        const bare = request(victim, '/forged-bare');
        forged.push(bare.notificationId);
        await js.publish(notificationSubject(victim), bare.payload, { msgID: bare.notificationId });
        // 2. Signed with the attacker's own P-256 key under the real event-signing kid.
        const jwks = eventSigningJwks((await capexCrypto.getJwks({})).keys);
        const kid = jwks[0].kid!;
        const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
        const ownKey: EventSigner = { sign: async data => ({ kid, signature: sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) }) };
        const own = request(victim, '/forged-own-key');
        forged.push(own.notificationId);
        await js.publish(notificationSubject(victim), await signNotification(ownKey, notificationSubject(victim), own.payload, own.createdAtMs), { msgID: own.notificationId });
        // 3. A genuinely signed request for one AS, moved to another AS's subject.
        const moved = request(other, '/forged-moved');
        forged.push(moved.notificationId);
        const genuineForOther = await signNotification(capabilityExposureSigner(capexCrypto), notificationSubject(other), moved.payload, moved.createdAtMs);
        await js.publish(notificationSubject(victim), genuineForOther, { msgID: moved.notificationId });
        // Positive control, published after them on the same subject: signed by capability exposure.
        const genuine = request(victim, '/genuine');
        await js.publish(
          notificationSubject(victim),
          await signNotification(capabilityExposureSigner(capexCrypto), notificationSubject(victim), genuine.payload, genuine.createdAtMs),
          { msgID: genuine.notificationId },
        );
        // The edge handles requests in order: once the genuine one arrived, the forged ones were judged.
        await eventually(() => received.includes('/genuine'), 20_000, 'the genuine notification');
        expect(received.filter(u => u.startsWith('/forged'))).to.deep.equal([]);
        const refused = await audit.waitFor(e => e.action === 'notification.request' && e.decision === 'deny', 3, 5_000);
        expect(refused).to.have.length(3);
        for (const e of refused) expect(['BAD_SIGNATURE', 'MALFORMED']).to.include(e.reason);
        // Nothing downstream: no delivery attempt was audited for them.
        const all = await audit.all();
        expect(all.filter(e => e.action === 'notification.deliver' && forged.includes(String(e.detail?.['notificationId'])))).to.deep.equal([]);
        expect(mesh.logs.filter(l => l.includes('notification request refused'))).to.have.length(3);
      } finally {
        await nc.close();
      }
    });

    it('1,000 RFC 7009 revocations: revoked tokens refused while alive; the token stream empties after they expire; the control stream does not grow', async () => {
      const c = await onboard('ctl-revoker');
      const admin = await mesh.natsConnect('nats-admin');
      try {
        const jsm = await admin.jetstreamManager();
        const controlBefore = (await jsm.streams.info(CONTROL_STREAM)).state;
        const tokenBefore = (await jsm.streams.info(TOKEN_REVOCATIONS_STREAM)).state;
        const newToken = async (): Promise<string> => {
          const res = await c.postForm('/oauth2/token', { grant_type: 'client_credentials', client_id: 'ctl-revoker', scope: MONITORING_EVENT });
          expect(res.status, res.text).to.equal(200);
          return (JSON.parse(res.text) as { access_token: string }).access_token;
        };
        const list = (token: string) => c.call({ method: 'GET', path: `${ME}/ctl-revoker/subscriptions`, token }).then(r => r.reply.status);
        const TOTAL = 1_000;
        let next = 0;
        const worker = async (): Promise<void> => {
          while (next < TOTAL) {
            next++;
            const token = await newToken();
            const res = await c.postForm('/oauth2/revoke', { token, token_type_hint: 'access_token' });
            expect(res.status).to.equal(200);
          }
        };
        await Promise.all(Array.from({ length: 4 }, worker));
        // Revoked tokens stay refused while they are alive; a token that was not revoked works.
        const revoked = await newToken();
        const kept = await newToken();
        expect(await list(revoked)).to.equal(200);
        expect((await c.postForm('/oauth2/revoke', { token: revoked, token_type_hint: 'access_token' })).status).to.equal(200);
        await eventually(async () => (await list(revoked)) === 401, 5_000, 'the revoked token refused');
        expect(await list(kept)).to.equal(200);

        const tokenAfter = (await jsm.streams.info(TOKEN_REVOCATIONS_STREAM, { subjects_filter: '>' })).state;
        // Every revocation was published once, with the one or two signed snapshots authentication
        // writes after each 1,000. (Counted by sequence: on a slow machine the first revocations
        // may already have left with their tokens, TOKEN_REVOCATION_RETENTION_S after them.)
        const published = tokenAfter.last_seq - tokenBefore.last_seq;
        expect(published).to.be.within(TOTAL + 1 + 1, TOTAL + 1 + 2);
        expect(tokenAfter.subjects?.[TOKEN_REVOCATIONS_SUBJECT]).to.be.within(1, TOTAL + 1);
        expect(tokenAfter.subjects?.[TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT] ?? 0).to.be.at.most(published - TOTAL - 1);
        // AS traffic did not touch the permanent control stream.
        expect((await jsm.streams.info(CONTROL_STREAM)).state.last_seq).to.equal(controlBefore.last_seq);
        // The revocations leave with the tokens: the stream is empty once the retention has passed.
        await eventually(async () => (await jsm.streams.info(TOKEN_REVOCATIONS_STREAM)).state.messages === 0, 60_000, 'the token revocations expired');
        const expired = (await jsm.streams.info(TOKEN_REVOCATIONS_STREAM)).state;
        expect(expired.last_seq).to.equal(tokenAfter.last_seq);
        expect(expired.bytes).to.equal(0);
        // Expiry (of the revocations and the snapshots) is not tampering: restarted, authentication and the edge serve again.
        await mesh.restart('authentication');
        await mesh.restart('edge');
        await eventually(async () => (await health(mesh, 'authentication')) === 'SERVING', 30_000, 'authentication SERVING after the restart');
        await eventually(
          async () => {
            const res = await c.postForm('/oauth2/token', { grant_type: 'client_credentials', client_id: 'ctl-revoker', scope: MONITORING_EVENT });
            return res.status === 200;
          },
          20_000,
          'a new token after the restart',
        );
        expect(mesh.logs.filter(l => l.includes('was tampered with'))).to.deep.equal([]);
      } finally {
        await admin.close();
      }
    });
  });

  describe('deleted revocation events', () => {
    let mesh: TestMesh;
    let operator: MeshClient<AuthenticationServiceClient>;
    let audit: AuditReader;
    const clients: T8Client[] = [];

    beforeEach(async function () {
      this.timeout(120_000);
      mesh = await startTestMesh({ edge: startEdgeService, extraEnv: { AESE_ISSUER: T8_ISSUER, SIM_TICK_MS: '0' } });
      operator = operatorAuthClient(mesh);
      audit = await AuditReader.open(mesh);
    });
    afterEach(async function () {
      this.timeout(30_000);
      for (const c of clients.splice(0)) await c.close();
      await audit?.close();
      operator?.close();
      await mesh?.stop();
    });

    const onboard = async (scsAsId: string): Promise<T8Client> => {
      const as = await onboardT8As(mesh, operator, scsAsId, { scopes: [MONITORING_EVENT] });
      await grantAccess(mesh, { [scsAsId]: { apis: { [MONITORING_EVENT]: GRANT } } });
      const c = T8Client.forMesh(mesh, as);
      clients.push(c);
      return c;
    };
    const tokenStatus = async (c: T8Client) => (await c.postForm('/oauth2/token', { grant_type: 'client_credentials', client_id: c.as.scsAsId, scope: MONITORING_EVENT })).status;
    const restartAll = async () => {
      await mesh.restart('authentication');
      await mesh.restart('edge');
    };
    const tamperLines = () => mesh.logs.filter(l => l.includes('was tampered with'));
    /** A token straight from authentication (as the edge asks for one), bypassing the edge's own state. */
    const directToken = async (c: T8Client): Promise<string> => {
      const auth = createMeshClient(AuthenticationServiceClient, { address: mesh.env['AUTHENTICATION_ADDR'], tls: mesh.tls('edge'), serverId: mesh.id('authentication') });
      try {
        return await auth.issueToken({ certificateDer: new X509Certificate(c.as.certPem).raw, grantType: 'client_credentials', clientId: '', scope: '' }).then(
          () => 'OK',
          (e: AeseError) => e.code,
        );
      } finally {
        auth.close();
      }
    };

    /** Revokes `revoked`, checks the positive control (restart: still refused, `other` served), returns the revocation's sequence. */
    const revokeAndControl = async (revoked: T8Client, other: T8Client): Promise<number> => {
      expect(await tokenStatus(revoked)).to.equal(200);
      const { version } = await operator.revoke({
        kind: RevocationKind.REVOCATION_KIND_APPLICATION_SERVER,
        scsAsId: revoked.as.scsAsId,
        certificateThumbprint: '',
        jti: '',
        reason: 'test',
      });
      // The edge also closes the revoked AS's connections: a request cut off that way is refused too.
      await eventually(async () => (await tokenStatus(revoked).catch(() => 0)) !== 200, 5_000, 'the revoked AS refused');
      // Positive control: with the stream intact, a restart keeps the revocation and serves the others.
      await restartAll();
      await eventually(async () => (await health(mesh, 'authentication')) === 'SERVING', 30_000, 'authentication SERVING');
      // Until the restarted edge listens, a request fails to connect: not served yet.
      await eventually(async () => (await tokenStatus(other).catch(() => 0)) === 200, 20_000, 'the other AS served');
      expect(await tokenStatus(revoked)).to.be.oneOf([400, 401]);
      expect(await directToken(revoked)).to.equal('INVALID_CLIENT');
      expect(await directToken(other)).to.equal('OK');
      return version;
    };
    /** After the deletion and a restart: NOT_SERVING, one line, one audit event, no token for anyone. */
    const expectRefusal = async (revoked: T8Client, other: T8Client, seq: number): Promise<void> => {
      await restartAll();
      await eventually(() => tamperLines().length > 0, 30_000, 'the tampering reported');
      expect(tamperLines()[0]).to.include(`control stream ${CONTROL_STREAM} was tampered with: sequence ${seq} missing`);
      expect(await health(mesh, 'authentication')).to.equal('NOT_SERVING');
      expect(await tokenStatus(revoked)).to.not.equal(200);
      expect(await tokenStatus(other)).to.not.equal(200);
      // Authentication itself refuses to decide (it would otherwise issue to the revoked AS).
      expect(await directToken(revoked)).to.equal('UNAVAILABLE');
      expect(await directToken(other)).to.equal('UNAVAILABLE');
      const audited = await audit.waitFor(e => e.action === 'control.integrity' && e.reason === 'TAMPERED', 2, 5_000);
      // One event per service that read the stream (authentication and the edge), naming the sequence.
      expect(new Set(audited.map(e => e.service))).to.deep.equal(new Set(['authentication', 'edge']));
      for (const e of audited) expect(e.detail).to.include({ stream: CONTROL_STREAM, firstMissing: seq, lastMissing: seq });
      // It stays that way: nothing later is applied as if nothing happened.
      expect(await health(mesh, 'authentication')).to.equal('NOT_SERVING');
    };

    it('attack: deleting an AS revocation event mid-stream, then a restart: no token for the revoked AS, the services refuse to serve', async () => {
      const revoked = await onboard('ctl-del-revoked');
      const other = await onboard('ctl-del-other');
      const seq = await revokeAndControl(revoked, other);
      // Something after it, so the deletion is mid-stream.
      await onboard('ctl-del-later');
      const admin = await mesh.natsConnect('nats-admin');
      try {
        const jsm = await admin.jetstreamManager();
        const msg = await jsm.streams.getMessage(CONTROL_STREAM, { seq });
        expect(msg.subject).to.equal(CONTROL_SUBJECTS.revocations);
        expect(SignedEvent.decode(msg.data).version).to.equal(seq);
        expect((await jsm.streams.info(CONTROL_STREAM)).state.last_seq).to.be.greaterThan(seq);
        await jsm.streams.deleteMessage(CONTROL_STREAM, seq);
      } finally {
        await admin.close();
      }
      await expectRefusal(revoked, other, seq);
    });

    it('attack: deleting the last revocation: the consumer does not report itself caught up; the services refuse to serve', async () => {
      const revoked = await onboard('ctl-tail-revoked');
      const other = await onboard('ctl-tail-other');
      const seq = await revokeAndControl(revoked, other);
      const admin = await mesh.natsConnect('nats-admin');
      try {
        const jsm = await admin.jetstreamManager();
        expect((await jsm.streams.info(CONTROL_STREAM)).state.last_seq).to.equal(seq);
        await jsm.streams.deleteMessage(CONTROL_STREAM, seq);
        expect((await jsm.streams.info(CONTROL_STREAM)).state.last_seq, 'the server keeps the last sequence').to.equal(seq);
      } finally {
        await admin.close();
      }
      await expectRefusal(revoked, other, seq);
    });
  });
});
