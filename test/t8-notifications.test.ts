/**
 * Issue 3, end to end with notifications: an AS (independent libraries) subscribes to continuous
 * LOCATION_REPORTING for a granted UE; as the simulated UE moves, the SCEF POSTs notifications to
 * the AS's own HTTPS receiver over mTLS with the SCEF's certificate, signed per RFC 9421 (verified
 * with http-message-signatures and the published JWKS), encrypted as JWE when policy obliges it
 * (decrypted with jose), and each body validates against the official 3GPP schema.
 */
import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { compactDecrypt } from 'jose';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { tempDir } from '@aese/testing';
import { loadT8Schemas } from '@aese/t8-openapi';
import { operatorAuthClient } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import { receiverTls, verifyNotificationSignature } from './support/notification-receiver.ts';
import type { TestMesh } from './support/mesh.ts';
import { grantAccess, MONITORING_EVENT, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';

const ME = '/3gpp-monitoring-event/v1';
const UE = simulatedUe(3);

interface Received {
  url: string;
  headers: Record<string, string | string[]>;
  body: Buffer;
  peerSubject: string;
}

describe('T8 end to end: signed (and encrypted) notifications at the AS receiver', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  let receiver: Server;
  let port: number;
  const dir = tempDir('aese-receiver');
  const received: Received[] = [];

  before(async function () {
    this.timeout(90_000);
    const tls = await receiverTls(dir.path);
    // Loopback is private: the operator allow-list admits it for the test receiver.
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: {
        AESE_ISSUER: T8_ISSUER,
        SIM_TICK_MS: '150',
        NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1/32',
        // The receiver listens on a port the OS picks: allow the unprivileged ones.
        NOTIFICATION_DESTINATION_PORTS: '1024-65535',
        NOTIFICATION_CA_FILE: tls.caFile,
      },
    });
    // The AS's receiver: its own server certificate; it authenticates the SCEF by the T8 CA.
    receiver = createServer({ cert: tls.certPem, key: tls.keyPem, ca: readFileSync(mesh.layout.t8Ca.cert, 'utf8'), requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          url: `https://${String(req.headers.host)}${req.url}`,
          headers: req.headers as Record<string, string>,
          body: Buffer.concat(chunks),
          peerSubject: String(peer.subject?.CN ?? ''),
        });
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>(r => receiver.listen(0, '127.0.0.1', r));
    port = (receiver.address() as AddressInfo).port;
    operator = operatorAuthClient(mesh);
  });
  after(async () => {
    operator?.close();
    receiver?.close();
    await mesh?.stop();
    dir.remove();
  });

  for (const encrypted of [false, true]) {
    it(`a continuous LOCATION_REPORTING subscription yields ${encrypted ? 'JWE-encrypted ' : ''}signed notifications as the UE moves`, async () => {
      const scsAsId = encrypted ? 'notified-enc' : 'notified-plain';
      const as = await onboardT8As(mesh, operator, scsAsId, { scopes: [MONITORING_EVENT] });
      await grantAccess(mesh, {
        [scsAsId]: {
          apis: {
            [MONITORING_EVENT]: {
              operations: ['create', 'read', 'delete', 'notify'],
              categories: ['location'],
              targets: [`externalId:${UE.externalId}`],
              anyTarget: false,
              locationGranularity: 'cell',
              ...(encrypted ? { encryptCategories: ['location'] } : {}),
            },
          },
        },
      });
      const c = T8Client.forMesh(mesh, as);
      try {
        const path = `/${scsAsId}/${encrypted ? 'enc' : 'plain'}`;
        const body = {
          externalId: UE.externalId,
          notificationDestination: `https://127.0.0.1:${port}${path}`,
          monitoringType: 'LOCATION_REPORTING',
          maximumNumberOfReports: 5,
          repPeriod: 1,
        };
        const created = await c.call({ method: 'POST', path: `${ME}/${scsAsId}/subscriptions`, body });
        expect(created.reply.status, created.reply.text).to.equal(201);
        const until = Date.now() + 15_000;
        while (!received.some(r => new URL(r.url).pathname === path)) {
          expect(Date.now(), 'no notification arrived').to.be.below(until);
          await new Promise(r => setTimeout(r, 50));
        }
        const r = received.find(x => new URL(x.url).pathname === path)!;
        expect(r.peerSubject).to.match(/^notifications\./);
        expect(r.headers['content-digest']).to.equal(`sha-256=:${createHash('sha256').update(r.body).digest('base64')}:`);
        expect(await verifyNotificationSignature(c, r), 'notification signature').to.equal(true);
        // Tampered copy: the signature no longer verifies.
        expect(await verifyNotificationSignature(c, { ...r, url: `${r.url}?x=1` })).to.equal(false);
        let json: unknown;
        if (encrypted) {
          expect(r.headers['content-type']).to.equal('application/jose');
          const { plaintext } = await compactDecrypt(r.body.toString(), as.decryption!.privateKey);
          json = JSON.parse(Buffer.from(plaintext).toString());
          expect(r.body.toString()).not.to.include(UE.externalId);
        } else {
          expect(r.headers['content-type']).to.equal('application/json');
          json = JSON.parse(r.body.toString());
        }
        const schemas = await loadT8Schemas();
        const v = schemas.validator('monitoring-event', 'MonitoringNotification', 'response');
        expect(v(json), JSON.stringify(v.violations())).to.equal(true);
      } finally {
        await c.close();
      }
    });
  }
});
