import { expect } from 'chai';
import { credentials as grpcCredentials, status } from '@grpc/grpc-js';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { healthCheck, meshCredentials, reflectionServices } from './support/grpc-probes.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';

const SERVICES = {
  crypto: 'aese.crypto.v1.CryptoService',
  authentication: 'aese.authentication.v1.AuthenticationService',
  authorization: 'aese.authorization.v1.AuthorizationService',
  'replay-guard': 'aese.replay_guard.v1.ReplayGuardService',
  'capability-exposure': 'aese.capability_exposure.v1.CapabilityExposureService',
} as const;

describe('mesh identity, health and reflection', () => {
  let mesh: TestMesh;
  before(async () => {
    mesh = await startTestMesh();
  });
  after(async () => {
    await mesh?.stop();
  });

  for (const [name, full] of Object.entries(SERVICES)) {
    it(`${name} answers health SERVING and lists its API through reflection over mTLS`, async () => {
      const address = `localhost:${mesh.ports[name]}`;
      const creds = meshCredentials(mesh.tls('edge'));
      expect(await healthCheck(address, creds)).to.equal('SERVING');
      expect(await healthCheck(address, creds, full)).to.equal('SERVING');
      const listed = await reflectionServices(address, creds);
      expect(listed).to.include(full);
      expect(listed).to.include('grpc.health.v1.Health');
    });
  }

  it('refuses an insecure (plaintext) channel', async () => {
    const err = await healthCheck(`localhost:${mesh.ports['crypto']}`, grpcCredentials.createInsecure()).then(
      () => undefined,
      (e: { code: number }) => e,
    );
    expect(err?.code).to.equal(status.UNAVAILABLE);
  });

  it('refuses a TLS client without a mesh certificate', async () => {
    const creds = grpcCredentials.createSsl(Buffer.from(mesh.tls('edge').caPem));
    const err = await healthCheck(`localhost:${mesh.ports['crypto']}`, creds).then(
      () => undefined,
      (e: { code: number }) => e,
    );
    expect(err?.code).to.equal(status.UNAVAILABLE);
  });

  it('gives PERMISSION_DENIED to a valid mesh identity that is not on the method allow-list', async () => {
    // The edge has a valid mesh certificate but may not onboard ASes (operator only).
    const asEdge = createMeshClient(AuthenticationServiceClient, {
      address: `localhost:${mesh.ports['authentication']}`,
      tls: mesh.tls('edge'),
      serverId: mesh.id('authentication'),
    });
    const asOperator = createMeshClient(AuthenticationServiceClient, {
      address: `localhost:${mesh.ports['authentication']}`,
      tls: mesh.tls('operator'),
      serverId: mesh.id('authentication'),
    });
    try {
      const denied = await asEdge.listApplicationServers({}).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(denied).to.be.instanceOf(AeseError);
      expect((denied as AeseError).code).to.equal('CALLER_NOT_ALLOWED');
      expect(((denied as AeseError).cause as { code: number }).code).to.equal(status.PERMISSION_DENIED);
      // Positive control: the operator identity may.
      const ok = await asOperator.listApplicationServers({});
      expect(ok.applicationServers).to.be.an('array');
    } finally {
      asEdge.close();
      asOperator.close();
    }
  });

  it('lets only authentication sign with the access-token key', async () => {
    const call = (identity: 'edge' | 'authentication' | 'capability-exposure') => {
      const c = createMeshClient(CryptoServiceClient, {
        address: `localhost:${mesh.ports['crypto']}`,
        tls: mesh.tls(identity),
        serverId: mesh.id('crypto'),
      });
      return c.sign({ purpose: KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN, data: Buffer.from('claims') }).finally(() => c.close());
    };
    for (const who of ['edge', 'capability-exposure'] as const) {
      const err = await call(who).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as AeseError).code, who).to.equal('CALLER_NOT_ALLOWED');
    }
    const ok = await call('authentication');
    expect(ok.signature.length).to.equal(64);
  });

  it('refuses a server that presents another SPIFFE identity than the pinned one', async () => {
    // Dial the authentication service but expect the crypto identity: the handshake must fail.
    const c = createMeshClient(CryptoServiceClient, {
      address: `localhost:${mesh.ports['authentication']}`,
      tls: mesh.tls('authentication'),
      serverId: mesh.id('crypto'),
      deadlineMs: 2000,
    });
    try {
      const err = await c.getJwks({}).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as AeseError).code).to.equal('UNAVAILABLE');
    } finally {
      c.close();
    }
  });
});
