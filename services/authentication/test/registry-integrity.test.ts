import { expect } from 'chai';
import { readAuditTrail } from '@aese/events';
import type { SignedRecord } from '@aese/events';
import type { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { KV_BUCKETS } from '@aese/nats';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { onboardAs } from '../../../test/support/onboarding.ts';
import { eventuallyValue } from '@aese/testing';

describe('AS registry integrity in KV', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let edge: MeshClient<AuthenticationServiceClient>;
  let operator: MeshClient<AuthenticationServiceClient>;
  before(async () => {
    mesh = await startTestMesh();
    const opts = (identity: 'edge' | 'operator') => ({
      address: mesh.env['AUTHENTICATION_ADDR'],
      tls: mesh.tls(identity),
      serverId: mesh.id('authentication'),
    });
    edge = createMeshClient(AuthenticationServiceClient, opts('edge'));
    operator = createMeshClient(AuthenticationServiceClient, opts('operator'));
  });
  after(async () => {
    edge?.close();
    operator?.close();
    await mesh?.stop();
  });

  const resolve = (der: Buffer) =>
    edge.resolveClient({ certificateDer: der }).then(
      r => r.applicationServer!.status,
      (e: AeseError) => e.code,
    );

  // A forged entry is not ignored with the last good value kept: after a restart there would be
  // no last good value, so the service would run on whatever is left. It stops serving instead.
  it('refuses a forged entry written straight to KV: NOT_SERVING, audited, the forged value never used', async () => {
    const victim = await onboardAs(mesh, 'victim', ['3gpp-monitoring-event']);
    const attacker = await onboardAs(mesh, 'attacker', ['3gpp-monitoring-event']);
    // Positive control: both resolve to their own, active entries.
    expect(await resolve(victim.der)).to.equal(1);
    expect(await resolve(attacker.der)).to.equal(1);
    const nc = await mesh.natsConnect('authentication');
    try {
      const kv = await nc.jetstream().views.kv(KV_BUCKETS.applicationServers);
      const genuine = JSON.parse(Buffer.from((await kv.get('victim'))!.value).toString()) as SignedRecord;
      // Forgery: the victim's entry lists the attacker's certificate, under the genuine signature.
      const payload = JSON.parse(genuine.payloadJson) as { value: Record<string, unknown>; head: string };
      const forged = { ...payload, value: { ...payload.value, certificateThumbprints: [attacker.thumbprint] } };
      const landsAt = (await kv.status()).streamInfo.state.last_seq + 1;
      await kv.put('victim', Buffer.from(JSON.stringify({ ...genuine, payloadJson: JSON.stringify(forged), version: landsAt })));
      const operatorNc = await mesh.natsConnect('operator');
      try {
        const audited = await until(async () => (await readAuditTrail(operatorNc)).find(e => e.action === 'registry.integrity'));
        expect(audited).to.deep.include({ decision: 'deny', reason: 'UNSIGNED' });
      } finally {
        await operatorNc.close();
      }
      expect(await resolve(victim.der)).to.equal('UNAVAILABLE');
      expect(await resolve(attacker.der)).to.equal('UNAVAILABLE');
      expect(mesh.logs.filter(l => l.includes('failed its integrity check'))).to.have.length(1);
    } finally {
      await nc.close();
    }
  });
});

/** Polls until `probe` returns a value; bounded so a broken service fails the test. */
function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  return eventuallyValue(probe, timeoutMs);
}
