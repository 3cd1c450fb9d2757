import { expect } from 'chai';
import { connect } from 'nats';
import { readAuditTrail } from '@aese/events';
import type { SignedRecord } from '@aese/events';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { KV_BUCKETS } from '@aese/nats';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { onboardAs } from '../../../test/support/onboarding.ts';

describe('AS registry integrity in KV', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let edge: MeshClient<AuthenticationServiceClient>;
  let operator: MeshClient<AuthenticationServiceClient>;
  before(async () => {
    mesh = await startTestMesh();
    const opts = (identity: 'edge' | 'operator') => ({
      address: mesh.env['AUTHENTICATION_ADDR']!,
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

  it('ignores and audits a forged entry and a rolled-back one written straight to KV', async () => {
    const victim = await onboardAs(mesh, 'victim', ['3gpp-monitoring-event']);
    const attacker = await onboardAs(mesh, 'attacker', ['3gpp-monitoring-event']);
    const nc = await connect({ servers: mesh.nats.url });
    try {
      const kv = await nc.jetstream().views.kv(KV_BUCKETS.applicationServers);
      const genuine = JSON.parse(Buffer.from((await kv.get('victim'))!.value).toString()) as SignedRecord;
      // Forgery: the victim's entry lists the attacker's certificate, with a made-up signature.
      const forgedPayload = JSON.stringify({ ...JSON.parse(genuine.payloadJson), certificateThumbprints: [attacker.thumbprint] });
      await kv.put('victim', Buffer.from(JSON.stringify({ ...genuine, payloadJson: forgedPayload, version: genuine.version + 1 })));
      await new Promise(r => setTimeout(r, 300));
      expect(await resolve(victim.der)).to.equal(1); // still ACTIVE with its own certificate
      // Rollback: suspend, then put the older genuinely signed entry back.
      await operator.suspendApplicationServer({ scsAsId: 'victim' });
      expect(await resolve(victim.der)).to.equal(2); // SUSPENDED
      await kv.put('victim', Buffer.from(JSON.stringify(genuine)));
      await new Promise(r => setTimeout(r, 300));
      expect(await resolve(victim.der)).to.equal(2);
      const reasons = (await readAuditTrail(nc)).filter(e => e.action === 'registry.entry').map(e => e.reason);
      expect(reasons).to.include.members(['BAD_SIGNATURE', 'STALE_VERSION']);
      // Positive control: the attacker's own entry is untouched and valid.
      expect(await resolve(attacker.der)).to.equal(1);
    } finally {
      await nc.close();
    }
  });
});
