import { expect } from 'chai';
import { AUDIT_STREAM, readAuditStream, readAuditTrail } from '@aese/events';
import type { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { KV_BUCKETS } from '@aese/nats';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { aese, expectOneLineError } from './support/cli.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { onboardAs } from './support/onboarding.ts';
import type { TestAs } from './support/onboarding.ts';
import { eventually } from '@aese/testing';

describe('aese revocation, key and audit commands (CLI binary against a running mesh)', function () {
  this.timeout(90_000);
  let mesh: TestMesh;
  let auth: MeshClient<AuthenticationServiceClient>;
  let env: Record<string, string>;

  before(async () => {
    mesh = await startTestMesh({ extraEnv: { AESE_ISSUER: 'https://scef.test' } });
    auth = createMeshClient(AuthenticationServiceClient, {
      address: mesh.env['AUTHENTICATION_ADDR'],
      tls: mesh.tls('edge'),
      serverId: mesh.id('authentication'),
    });
    env = {
      AESE_STATE_DIR: mesh.stateDir,
      AESE_TRUST_DOMAIN: mesh.trustDomain,
      AUTHENTICATION_ADDR: mesh.env['AUTHENTICATION_ADDR'],
      CRYPTO_ADDR: mesh.env['CRYPTO_ADDR'],
      NATS_URL: mesh.nats.url,
    };
  });
  after(async () => {
    auth?.close();
    await mesh?.stop();
  });

  const token = async (as: TestAs) => (await auth.issueToken({ certificateDer: as.der, grantType: 'client_credentials', clientId: '', scope: '' })).accessToken;
  const verify = (t: string, as: TestAs) =>
    auth.verifyToken({ token: t, certificateDer: as.der }).then(
      () => 'OK',
      (e: AeseError) => e.code,
    );

  it('as revoke, cert revoke and token revoke take effect; bad input is a one-line usage error', async () => {
    const a = await onboardAs(mesh, 'cli-rev-as', ['3gpp-monitoring-event']);
    const c = await onboardAs(mesh, 'cli-rev-cert', ['3gpp-monitoring-event']);
    const t = await onboardAs(mesh, 'cli-rev-tok', ['3gpp-monitoring-event']);
    const [ta, tc, tt, tt2] = [await token(a), await token(c), await token(t), await token(t)];
    const jti = (JSON.parse(Buffer.from(tt.split('.')[1], 'base64url').toString()) as { jti: string }).jti;
    for (const [args, pattern] of [
      [['as', 'revoke', 'cli-rev-as', '--reason', 'compromised'], /revoked SCS\/AS cli-rev-as/],
      [['cert', 'revoke', c.thumbprint], /revoked certificate/],
      [['token', 'revoke', jti], /revoked token/],
    ] as const) {
      const res = await aese(args, env);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.match(pattern);
    }
    expect(await verify(ta, a)).to.equal('INVALID_TOKEN');
    expect(await verify(tc, c)).to.equal('INVALID_TOKEN');
    expect(await verify(tt, t)).to.equal('INVALID_TOKEN');
    expect(await verify(tt2, t)).to.equal('OK');
    expectOneLineError(await aese(['cert', 'revoke', 'not-a-thumbprint'], env), 2, /thumbprint/);
    expectOneLineError(await aese(['token', 'revoke', 'a b'], env), 2, /jti/);
    expectOneLineError(await aese(['as', 'revoke', 'x*y'], env), 2, /scsAsId/);
  });

  it('keys rotate makes a new key active; keys list shows the old one retired', async () => {
    const res = await aese(['keys', 'rotate'], env);
    expect(res.code, res.stderr).to.equal(0);
    const m = /new key (\S+), retired (\S+)/.exec(res.stdout);
    expect(m, res.stdout).to.not.equal(null);
    const list = await aese(['keys', 'list'], env);
    expect(list.code, list.stderr).to.equal(0);
    expect(list.stdout).to.match(new RegExp(`${m![2]}\\s+access-token\\s+ES256\\s+retired`));
    expect(list.stdout).to.match(new RegExp(`${m![1]}\\s+access-token\\s+ES256\\s+active`));
    expectOneLineError(await aese(['keys', 'rotate', '--purpose', 'nope'], env), 2, /--purpose/);
  });

  it('audit tail shows the changes; audit verify passes, then detects a removed and an altered event', async () => {
    const tail = await aese(['audit', 'tail', '-n', '50'], env);
    expect(tail.code, tail.stderr).to.equal(0);
    expect(tail.stdout).to.match(/revoke\.application-server/);
    expect(tail.stdout).to.match(/key\.rotate/);
    const ok = await aese(['audit', 'verify'], env);
    expect(ok.code, ok.stdout).to.equal(0);
    expect(ok.stdout).to.match(/intact/);

    const nc = await mesh.natsConnect('nats-admin');
    try {
      const jsm = await nc.jetstreamManager();
      const trail = await readAuditTrail(nc);
      // Remove one event from the middle of a chain that has at least three.
      const counts = new Map<string, number>();
      for (const e of trail) counts.set(e.chain, (counts.get(e.chain) ?? 0) + 1);
      const chain = [...counts].find(([, n]) => n >= 3)![0];
      // Its stream position (signed checkpoints sit between the events).
      const victim = (await readAuditStream(nc)).messages.find(
        m =>
          (m.body as { chain?: string; seq?: number; kind?: string }).kind !== 'checkpoint' &&
          (m.body as { chain?: string }).chain === chain &&
          (m.body as { seq?: number }).seq === 2,
      )!;
      await jsm.streams.deleteMessage(AUDIT_STREAM, victim.position);
      const removed = await aese(['audit', 'verify'], env);
      expect(removed.code).to.equal(1);
      expect(removed.stdout).to.match(new RegExp(`chain ${chain}: MISSING: event 2 is missing`));
      expect(removed.stdout).to.include(`chain stream: DELETED: messages ${victim.position} of`);
    } finally {
      await nc.close();
    }
  });

  it('audit verify detects an altered event', async () => {
    const nc = await mesh.natsConnect('nats-admin');
    try {
      const jsm = await nc.jetstreamManager();
      // (A purge would itself be detected: the chains would no longer start at 1.) The trail
      // already has the removal from the previous test, but nothing altered.
      const rotations = async () => (await readAuditTrail(nc)).filter(e => e.action === 'key.rotate').length;
      const rotatedBefore = await rotations();
      await aese(['keys', 'rotate'], env);
      await eventually(async () => (await rotations()) > rotatedBefore, 5_000, 'the rotation in the audit trail');
      expect((await aese(['audit', 'verify'], env)).stdout).not.to.match(/ALTERED/);
      // Replace the last event (not a checkpoint) with an altered copy (decision flipped).
      const lastEvent = (await readAuditStream(nc)).messages.filter(m => (m.body as { kind?: string }).kind !== 'checkpoint').pop()!;
      const last = await jsm.streams.getMessage(AUDIT_STREAM, { seq: lastEvent.position });
      const altered = { ...(JSON.parse(Buffer.from(last.data).toString()) as Record<string, unknown>), decision: 'allow' };
      await jsm.streams.deleteMessage(AUDIT_STREAM, lastEvent.position);
      await nc.jetstream().publish(last.subject, Buffer.from(JSON.stringify(altered)));
      const res = await aese(['audit', 'verify'], env);
      expect(res.code).to.equal(1);
      expect(res.stdout).to.match(/ALTERED/);
    } finally {
      await nc.close();
    }
  });
  it("audit tail and verify refuse a NATS that holds another deployment's state, saying what to do", async () => {
    // crypto is the one identity that records the deployment; here it records another one's mesh CA.
    const nc = await mesh.natsConnect('crypto');
    try {
      const kv = await nc.jetstream().views.kv(KV_BUCKETS.deployment, { bindOnly: true });
      const mine = (await kv.get('deployment'))!;
      const record = JSON.parse(Buffer.from(mine.value).toString('utf8')) as { meshCa: string };
      // Positive control: this deployment's trail is read.
      expect((await aese(['audit', 'tail', '-n', '1'], env)).code).to.equal(0);
      await kv.put('deployment', Buffer.from(JSON.stringify({ ...record, meshCa: 'A'.repeat(43), createdAt: new Date(0).toISOString() })));
      try {
        for (const args of [
          ['audit', 'tail'],
          ['audit', 'verify'],
        ]) {
          const res = await aese(args, env);
          expect(res.stdout, args.join(' ')).to.equal('');
          expectOneLineError(res, 1, /holds the state of another deployment.*point NATS_URL at this deployment's NATS/);
        }
      } finally {
        await kv.put('deployment', mine.value);
      }
      expect((await aese(['audit', 'tail', '-n', '1'], env)).code).to.equal(0);
    } finally {
      await nc.close();
    }
  });
});
