import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import { AuthenticationServiceClient, RevocationKind } from '@aese/protos/authentication/v1';
import { startAuthenticationService } from '@aese/authentication-service';
import type { NatsCluster } from '@aese/testing';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { onboardAs } from './support/onboarding.ts';
import type { TestAs } from './support/onboarding.ts';

const REVOCATIONS = 12;

describe('revocation on a three-node NATS cluster that loses a node', function () {
  this.timeout(120_000);
  let cluster: NatsCluster;
  let mesh: TestMesh;
  const stops: (() => Promise<void>)[] = [];

  before(async () => {
    mesh = await startTestMesh({ natsCluster: 3, extraEnv: { AESE_ISSUER: 'https://scef.test', NATS_REPLICAS: '3' } });
    cluster = mesh.cluster!;
  });
  after(async () => {
    for (const s of stops) await s();
    await mesh?.stop();
  });

  it('loses no acknowledged revocation: every replica, and one started afterwards, applies all of them', async () => {
    const client = (port: number, identity: 'edge' | 'operator') => {
      const c = createMeshClient(AuthenticationServiceClient, {
        address: `localhost:${port}`,
        tls: mesh.tls(identity),
        serverId: mesh.id('authentication'),
        deadlineMs: 10_000,
      });
      stops.push(async () => c.close());
      return c;
    };
    const silent = createLogger({ service: 'authentication', level: 'silent' });
    const second = await startAuthenticationService({ ...mesh.env, PORT: '0' }, silent);
    await second.whenReady;
    stops.push(() => second.stop());
    const operator = client(mesh.ports['authentication'], 'operator');
    const replicas = [client(mesh.ports['authentication'], 'edge'), client(second.port, 'edge')];
    const ases: TestAs[] = [];
    const tokens: string[] = [];
    for (let i = 0; i < REVOCATIONS + 1; i++) {
      const as = await onboardAs(mesh, `cl-${i}`, ['3gpp-monitoring-event']);
      ases.push(as);
      tokens.push((await replicas[0].issueToken({ certificateDer: as.der, grantType: 'client_credentials', clientId: '', scope: '' })).accessToken);
    }
    // An operator retries a revocation until it is acknowledged; only acknowledged ones count.
    const revoke = async (scsAsId: string): Promise<number> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return (await operator.revoke({ kind: RevocationKind.REVOCATION_KIND_APPLICATION_SERVER, scsAsId, certificateThumbprint: '', jti: '', reason: 'cluster test' })).version;
        } catch (err) {
          if (!(err instanceof AeseError) || attempt > 20) throw err;
          await new Promise(r => setTimeout(r, 250));
        }
      }
    };
    const versions: number[] = [];
    for (let i = 0; i < REVOCATIONS; i++) {
      if (i === REVOCATIONS / 2) await cluster.nodes[0].stop();
      versions.push(await revoke(ases[i].scsAsId));
    }
    expect(new Set(versions).size).to.equal(REVOCATIONS);
    const code = (c: MeshClient<AuthenticationServiceClient>, i: number) =>
      c.verifyToken({ token: tokens[i], certificateDer: ases[i].der }).then(
        () => 'OK',
        (e: AeseError) => e.code,
      );
    const third = await startAuthenticationService({ ...mesh.env, PORT: '0' }, silent);
    await third.whenReady;
    stops.push(() => third.stop());
    const all = [...replicas, client(third.port, 'edge')];
    // A replica whose server died re-creates its consumer after missed heartbeats.
    const deadline = Date.now() + 30_000;
    for (const c of all) {
      for (let i = 0; i < REVOCATIONS; i++) {
        while ((await code(c, i)) !== 'INVALID_TOKEN') {
          expect(Date.now(), `revocation ${i} missing at a replica`).to.be.below(deadline);
          await new Promise(r => setTimeout(r, 100));
        }
      }
      // Positive control: the AS that was never revoked still verifies.
      expect(await code(c, REVOCATIONS)).to.equal('OK');
    }
  });
});
