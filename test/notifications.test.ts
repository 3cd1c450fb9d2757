import { expect } from 'chai';
import { createHash, createPublicKey, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { NatsConnection } from 'nats';
import { compactDecrypt, importJWK } from 'jose';
import { createVerifier, httpbis } from 'http-message-signatures';
import {
  AuditLog,
  cryptoEventSigner,
  eventSigningJwks,
  JwksEventVerifier,
  NatsAuditSink,
  ensureNotificationStream,
  notificationSubject,
  readAuditTrail,
  signNotification,
} from '@aese/events';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import { parseAllowList } from '@aese/net-guard';
import { createSelfSignedCa, issueCertificate } from '@aese/pki';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { NotificationRequested } from '@aese/protos/events/v1';
import { DelegatedSigningKey } from '../services/edge/src/domain/delegated-signing-key.ts';
import { encryptionKeyOf } from '../services/edge/src/domain/application-server.ts';
import { httpsPoster } from '../services/edge/src/notifications/https-poster.ts';
import { startNotifier } from '../services/edge/src/notifications/notification-consumer.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { onboardAs } from './support/onboarding.ts';
import type { TestAs } from './support/onboarding.ts';

interface Received {
  method: string;
  url: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  clientCertSubject: string;
}

describe('notification delivery by the edge to the AS receiver', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let nc: NatsConnection;
  let receiver: Server;
  let port: number;
  let as: TestAs;
  let crypto: MeshClient<CryptoServiceClient>;
  let cryptoAsCapex: MeshClient<CryptoServiceClient>;
  let auth: MeshClient<AuthenticationServiceClient>;
  let notifier: { stop(): Promise<void> };
  const received: Received[] = [];
  const answers: number[] = []; // statuses to answer with, in order; then 204

  before(async () => {
    mesh = await startTestMesh();
    // Plays capability exposure (publishes), the edge (consumes, audits) and the operator (reads the trail).
    nc = await mesh.natsConnect('nats-admin');
    as = await onboardAs(mesh, 'notified-as', ['3gpp-monitoring-event']);
    // The AS's receiver: its own server certificate, and it authenticates the SCEF by the T8 CA.
    const receiverCa = await createSelfSignedCa('AS receiver test CA');
    const receiverCert = await issueCertificate(receiverCa, { subject: 'CN=localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], extendedKeyUsages: ['serverAuth'] });
    receiver = createServer(
      { cert: receiverCert.certPem, key: receiverCert.keyPem, ca: readFileSync(mesh.layout.t8Ca.cert, 'utf8'), requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          const peer = (req.socket as TLSSocket).getPeerCertificate();
          received.push({
            method: req.method!,
            url: `https://${String(req.headers.host)}${req.url}`,
            headers: req.headers as Record<string, string>,
            body: Buffer.concat(chunks),
            clientCertSubject: String(peer.subject?.CN ?? ''),
          });
          res.statusCode = answers.shift() ?? 204;
          res.end();
        });
      },
    );
    await new Promise<void>(r => receiver.listen(0, '127.0.0.1', r));
    port = (receiver.address() as AddressInfo).port;
    crypto = createMeshClient(CryptoServiceClient, { address: mesh.env['CRYPTO_ADDR'], tls: mesh.tls('edge'), serverId: mesh.id('crypto') });
    // Notification requests are signed by capability exposure through crypto, as in the mesh.
    cryptoAsCapex = createMeshClient(CryptoServiceClient, { address: mesh.env['CRYPTO_ADDR'], tls: mesh.tls('capability-exposure'), serverId: mesh.id('crypto') });
    auth = createMeshClient(AuthenticationServiceClient, { address: mesh.env['AUTHENTICATION_ADDR'], tls: mesh.tls('edge'), serverId: mesh.id('authentication') });
    const key = new DelegatedSigningKey({
      fetch: async () => {
        const g = await crypto.delegateSigningKey({ purpose: KeyPurpose.KEY_PURPOSE_MESSAGE_SIGNING });
        return { kid: g.kid, alg: g.algorithm === 2 ? 'ed25519' : 'ecdsa-p256-sha256', pkcs8: g.privateKeyPkcs8, notAfterMs: g.notAfterMs };
      },
    });
    await ensureNotificationStream(nc);
    notifier = await startNotifier({
      nc,
      logger: createLogger({ service: 'edge', level: 'silent' }),
      audit: new AuditLog('edge', new NatsAuditSink(nc)),
      verifier: new JwksEventVerifier(async () => eventSigningJwks((await crypto.getJwks({})).keys)),
      outcomeSigner: cryptoEventSigner(crypto),
      retryDelaysMs: [200],
      deps: {
        // Only this receiver is allowed among the internal addresses (tests listen on loopback).
        destinations: { allow: parseAllowList([`127.0.0.1:${port}`]), meshEndpoints: Object.values(mesh.ports).map(p => `localhost:${p}`) },
        signingKey: () => key.current(),
        encryptionKey: async scsAsId => encryptionKeyOf((await auth.getApplicationServer({ scsAsId })).applicationServer!.encryptionKeyJson),
        post: httpsPoster({
          certPem: readFileSync(mesh.layout.edgeNotifier.cert, 'utf8'),
          keyPem: readFileSync(mesh.layout.edgeNotifier.key, 'utf8'),
          caPem: receiverCa.certPem,
        }),
      },
    });
  });
  after(async () => {
    await notifier?.stop();
    crypto?.close();
    cryptoAsCapex?.close();
    auth?.close();
    receiver?.close();
    await nc?.close();
    await mesh?.stop();
  });

  const publish = async (destination: string, body: unknown, obligations: string[] = []) => {
    const id = randomUUID();
    const createdAtMs = Date.now();
    const request = NotificationRequested.encode({
      notificationId: id,
      scsAsId: as.scsAsId,
      api: '3gpp-monitoring-event',
      subscriptionId: 'sub-1',
      destination,
      body: Buffer.from(JSON.stringify(body)),
      obligations,
      obligationDetails: [],
      createdAtMs,
      traceparent: '',
    }).finish();
    const signer = {
      sign: async (data: Uint8Array) => {
        const out = await cryptoAsCapex.sign({ purpose: KeyPurpose.KEY_PURPOSE_EVENT_SIGNING, data: Buffer.from(data) });
        return { kid: out.kid, signature: out.signature };
      },
    };
    const subject = notificationSubject(as.scsAsId);
    await nc.jetstream().publish(subject, await signNotification(signer, subject, request, createdAtMs), { msgID: id });
    return id;
  };
  const until = async (cond: () => boolean, ms = 10_000) => {
    const end = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > end) throw new Error('not in time');
      await new Promise(r => setTimeout(r, 20));
    }
  };

  it('POSTs a notification signed by the SCEF (RFC 9421, verified with an independent library and the JWKS), over mTLS with the SCEF certificate', async () => {
    const n0 = received.length;
    await publish(`https://127.0.0.1:${port}/callbacks/me`, { subscription: 'x', monitoringType: 'LOCATION_REPORTING' });
    await until(() => received.length > n0);
    const r = received[n0];
    expect(r.method).to.equal('POST');
    expect(r.clientCertSubject).to.match(/^notifications\./);
    expect(JSON.parse(r.body.toString())).to.deep.equal({ subscription: 'x', monitoringType: 'LOCATION_REPORTING' });
    expect(r.headers['content-digest']).to.equal(`sha-256=:${createHash('sha256').update(r.body).digest('base64')}:`);
    const { keys } = await crypto.getJwks({});
    const verified = await httpbis.verifyMessage(
      {
        keyLookup: async params => {
          const k = keys.find(x => x.kid === params.keyid);
          if (!k) return null;
          return { id: k.kid, algs: ['ecdsa-p256-sha256'], verify: createVerifier(createPublicKey({ key: JSON.parse(k.jwkJson) as never, format: 'jwk' }), 'ecdsa-p256-sha256') };
        },
        requiredFields: ['@method', '@target-uri', 'content-digest', 'content-type'],
        requiredParams: ['created', 'nonce', 'keyid'],
      },
      { method: r.method, url: r.url, headers: r.headers },
    );
    expect(verified).to.equal(true);
    // A fresh nonce lets the AS reject a replayed notification.
    expect(r.headers['signature-input']).to.match(/nonce="[A-Za-z0-9_-]{22,}"/);
  });

  it('encrypts the body to the AS key when the obligation says so (and decrypts with jose)', async () => {
    const n0 = received.length;
    await publish(`https://127.0.0.1:${port}/cb`, { locationInfo: { cellId: 'c1' } }, ['encrypt-response']);
    await until(() => received.length > n0);
    const r = received[n0];
    expect(r.headers['content-type']).to.equal('application/jose');
    expect(r.body.toString()).not.to.include('cellId');
    const { plaintext, protectedHeader } = await compactDecrypt(r.body.toString(), await importJWK(as.encryptionPrivateJwk as never, 'ECDH-ES+A256KW'));
    expect(protectedHeader.alg).to.equal('ECDH-ES+A256KW');
    expect(JSON.parse(Buffer.from(plaintext).toString())).to.deep.equal({ locationInfo: { cellId: 'c1' } });
  });

  it('retries with back-off when the receiver fails, then delivers once', async () => {
    const n0 = received.length;
    answers.push(503, 503);
    await publish(`https://127.0.0.1:${port}/retry`, { n: 1 });
    await until(() => received.length >= n0 + 3);
    await new Promise(r => setTimeout(r, 500));
    expect(received.slice(n0).map(r => new URL(r.url).pathname)).to.deep.equal(['/retry', '/retry', '/retry']);
  });

  it('never contacts a refused destination (SSRF at delivery time) and audits the drop', async () => {
    const n0 = received.length;
    const refused = [
      'https://169.254.169.254/latest/meta-data',
      `https://127.0.0.1:${port + 1}/not-allowed-port`,
      `http://127.0.0.1:${port}/plain-http`,
      `https://localhost:${mesh.ports['crypto']}/mesh`,
    ];
    for (const d of refused) await publish(d, { n: 2 });
    // Positive control after them: the allowed receiver still gets its notification.
    await publish(`https://127.0.0.1:${port}/after`, { n: 3 });
    await until(() => received.length > n0);
    expect(received.slice(n0).map(r => new URL(r.url).pathname)).to.deep.equal(['/after']);
    await until(() => false, 300).catch(() => undefined);
    const drops = (await readAuditTrail(nc)).filter(e => e.action === 'notification.deliver' && e.reason === 'DESTINATION_REFUSED');
    expect(drops).to.have.length(refused.length);
  });
});
