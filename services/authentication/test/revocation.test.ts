import { expect } from 'chai';
import { generateKeyPairSync, sign } from 'node:crypto';
import type { AeseError } from '@aese/errors';
import { CONTROL_SUBJECTS, ControlPublisher, readAuditTrail } from '@aese/events';
import { createMeshClient } from '@aese/grpc-client';
import { eventually } from '@aese/testing';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import { AuthenticationServiceClient, RevocationKind } from '@aese/protos/authentication/v1';
import { encodeRevocation, REVOCATION_EVENT_TYPE } from '@aese/revocation';
import { startAuthenticationService } from '../src/server.ts';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { onboardAs } from '../../../test/support/onboarding.ts';
import type { TestAs } from '../../../test/support/onboarding.ts';

const silent = createLogger({ service: 'authentication', level: 'silent' });

describe('revocation across authentication replicas', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let operator: MeshClient<AuthenticationServiceClient>;
  const replicas: { port: number; stop(): Promise<void> }[] = [];
  const edgeClients: MeshClient<AuthenticationServiceClient>[] = [];

  const edgeClient = (port: number) => {
    const c = createMeshClient(AuthenticationServiceClient, {
      address: `localhost:${port}`,
      tls: mesh.tls('edge'),
      serverId: mesh.id('authentication'),
    });
    edgeClients.push(c);
    return c;
  };
  const startReplica = async (env: Record<string, string> = {}) => {
    const r = await startAuthenticationService({ ...mesh.env, PORT: '0', ...env }, silent);
    await r.whenReady;
    replicas.push(r);
    return r;
  };
  const token = async (c: MeshClient<AuthenticationServiceClient>, as: TestAs) =>
    (await c.issueToken({ certificateDer: as.der, grantType: 'client_credentials', clientId: as.scsAsId, scope: '' })).accessToken;
  const verifyCode = (c: MeshClient<AuthenticationServiceClient>, t: string, as: TestAs) =>
    c.verifyToken({ token: t, certificateDer: as.der }).then(
      () => 'OK',
      (e: AeseError) => e.code,
    );

  before(async () => {
    mesh = await startTestMesh({ extraEnv: { AESE_ISSUER: 'https://scef.test' } });
    operator = createMeshClient(AuthenticationServiceClient, {
      address: mesh.env['AUTHENTICATION_ADDR'],
      tls: mesh.tls('operator'),
      serverId: mesh.id('authentication'),
    });
  });
  after(async () => {
    operator?.close();
    for (const c of edgeClients) c.close();
    for (const r of replicas) await r.stop();
    await mesh?.stop();
  });

  it('revoking an AS, a certificate and a token takes effect on two replicas', async () => {
    const second = await startReplica();
    const a = edgeClient(mesh.ports['authentication']);
    const b = edgeClient(second.port);
    const asRevoked = await onboardAs(mesh, 'rev-as', ['3gpp-monitoring-event']);
    const certRevoked = await onboardAs(mesh, 'rev-cert', ['3gpp-monitoring-event']);
    const tokRevoked = await onboardAs(mesh, 'rev-tok', ['3gpp-monitoring-event']);
    const bystander = await onboardAs(mesh, 'rev-bystander', ['3gpp-monitoring-event']);
    const t1 = await token(a, asRevoked);
    const t2 = await token(a, certRevoked);
    const t3 = await token(a, tokRevoked);
    const t3b = await token(a, tokRevoked);
    const t4 = await token(a, bystander);
    for (const c of [a, b]) {
      for (const [t, as] of [
        [t1, asRevoked],
        [t2, certRevoked],
        [t3, tokRevoked],
        [t4, bystander],
      ] as const) {
        expect(await verifyCode(c, t, as)).to.equal('OK');
      }
    }
    const jti = (JSON.parse(Buffer.from(t3.split('.')[1], 'base64url').toString()) as { jti: string }).jti;
    await operator.revoke({ kind: RevocationKind.REVOCATION_KIND_APPLICATION_SERVER, scsAsId: 'rev-as', certificateThumbprint: '', jti: '', reason: 'compromised' });
    await operator.revoke({ kind: RevocationKind.REVOCATION_KIND_CERTIFICATE, scsAsId: '', certificateThumbprint: certRevoked.thumbprint, jti: '', reason: 'key leaked' });
    await operator.revoke({ kind: RevocationKind.REVOCATION_KIND_TOKEN, scsAsId: '', certificateThumbprint: '', jti, reason: 'token leaked' });
    const deadline = Date.now() + 1000;
    for (const c of [a, b]) {
      for (;;) {
        const codes = [await verifyCode(c, t1, asRevoked), await verifyCode(c, t2, certRevoked), await verifyCode(c, t3, tokRevoked)];
        if (codes.every(x => x === 'INVALID_TOKEN')) break;
        expect(Date.now(), `replica still accepts: ${codes.join(',')}`).to.be.below(deadline);
        await new Promise(r => setTimeout(r, 10));
      }
      // The revoked AS and certificate get no new token; the other token of the same AS still works.
      expect(
        await c.issueToken({ certificateDer: asRevoked.der, grantType: 'client_credentials', clientId: '', scope: '' }).then(
          () => 'OK',
          (e: AeseError) => e.code,
        ),
      ).to.equal('INVALID_CLIENT');
      expect(
        await c.issueToken({ certificateDer: certRevoked.der, grantType: 'client_credentials', clientId: '', scope: '' }).then(
          () => 'OK',
          (e: AeseError) => e.code,
        ),
      ).to.equal('INVALID_CLIENT');
      expect(await verifyCode(c, t3b, tokRevoked)).to.equal('OK');
      expect(await verifyCode(c, t4, bystander)).to.equal('OK');
    }
  });

  it('a replica started after a revocation rejects the revoked identity from its first request', async () => {
    const as = await onboardAs(mesh, 'rev-late', ['3gpp-monitoring-event']);
    const t = await token(edgeClient(mesh.ports['authentication']), as);
    await operator.revoke({ kind: RevocationKind.REVOCATION_KIND_APPLICATION_SERVER, scsAsId: 'rev-late', certificateThumbprint: '', jti: '', reason: 'test' });
    const late = await startReplica();
    expect(await verifyCode(edgeClient(late.port), t, as)).to.equal('INVALID_TOKEN');
  });

  it('a forged revocation changes nothing and is audited; an RFC 7009 self-revocation works', async () => {
    const as = await onboardAs(mesh, 'rev-forged', ['3gpp-monitoring-event']);
    const c = edgeClient(mesh.ports['authentication']);
    const t = await token(c, as);
    const nc = await mesh.natsConnect('authentication');
    try {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const forger = new ControlPublisher(nc, {
        sign: async data => ({ kid: 'event-signing-forged', signature: sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) }),
      });
      await forger.publish(CONTROL_SUBJECTS.revocations, REVOCATION_EVENT_TYPE, encodeRevocation({ kind: 'application-server', scsAsId: 'rev-forged' }, Date.now()));
      // Once the refusal is audited the forged revocation has been handled: the token still verifies.
      const reader = await mesh.natsConnect('operator');
      try {
        await eventually(
          async () => (await readAuditTrail(reader)).some(e => e.action === 'control.revocation' && e.reason === 'BAD_SIGNATURE'),
          10_000,
          'the forged revocation refused in the audit trail',
        );
      } finally {
        await reader.close();
      }
      expect(await verifyCode(c, t, as)).to.equal('OK');
    } finally {
      await nc.close();
    }
    // Positive control through the client's own revocation.
    expect((await c.revokeOwnToken({ token: t, certificateDer: as.der })).revoked).to.equal(true);
    expect(await verifyCode(c, t, as)).to.equal('INVALID_TOKEN');
    // Another AS cannot revoke it (the token is not its own): nothing is published.
    const other = await onboardAs(mesh, 'rev-other', ['3gpp-monitoring-event']);
    const t2 = await token(c, as);
    expect((await c.revokeOwnToken({ token: t2, certificateDer: other.der })).revoked).to.equal(false);
    expect(await verifyCode(c, t2, as)).to.equal('OK');
  });

  it('with NATS down it answers within the staleness bound, then fails closed, and recovers by itself', async () => {
    const as = await onboardAs(mesh, 'rev-stale', ['3gpp-monitoring-event']);
    const r = await startReplica({ STALENESS_BOUND_MS: '1500' });
    const c = edgeClient(r.port);
    const t = await token(c, as);
    await mesh.nats.stop();
    try {
      // The waits are the point: still served inside the staleness bound, refused once it has passed.
      await new Promise(res => setTimeout(res, 300));
      expect(await verifyCode(c, t, as)).to.equal('OK');
      await new Promise(res => setTimeout(res, 1500));
      expect(await verifyCode(c, t, as)).to.equal('UNAVAILABLE');
    } finally {
      await mesh.nats.restart();
    }
    const until = Date.now() + 10_000;
    while ((await verifyCode(c, t, as)) !== 'OK') {
      expect(Date.now()).to.be.below(until);
      await new Promise(res => setTimeout(res, 100));
    }
  });
});
