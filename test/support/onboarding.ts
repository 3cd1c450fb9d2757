import { X509Certificate } from 'node:crypto';
import { exportJWK, generateKeyPair } from 'jose';
import { createMeshClient } from '@aese/grpc-client';
import { certificateThumbprint, issueAsClientCertificate } from '@aese/pki';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import type { TestMesh } from './mesh.ts';

/** An onboarded AS as a test holds it: its certificate, key and the registered record. */
export interface TestAs {
  readonly scsAsId: string;
  readonly certPem: string;
  readonly keyPem: string;
  readonly der: Buffer;
  readonly thumbprint: string;
  /** The private encryption JWK (ECDH-ES P-256) whose public half is registered. */
  readonly encryptionPrivateJwk: Record<string, unknown>;
}

/** Issues an AS certificate and registers it through the operator's admin RPC. */
export async function onboardAs(mesh: TestMesh, scsAsId: string, scopes: string[]): Promise<TestAs> {
  const cert = await issueAsClientCertificate(mesh.stateDir, mesh.trustDomain, scsAsId);
  const der = new X509Certificate(cert.certPem).raw;
  const { publicKey } = await generateKeyPair('ES256', { extractable: true });
  const signingJwk = { ...(await exportJWK(publicKey)), kid: `${scsAsId}-sig-1` };
  const enc = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
  const encryptionPublic = { ...(await exportJWK(enc.publicKey)), kid: `${scsAsId}-enc-1` };
  const encryptionPrivateJwk = { ...(await exportJWK(enc.privateKey)), kid: `${scsAsId}-enc-1` };
  const admin = createMeshClient(AuthenticationServiceClient, {
    address: mesh.env['AUTHENTICATION_ADDR'],
    tls: mesh.tls('operator'),
    serverId: mesh.id('authentication'),
  });
  try {
    await admin.registerApplicationServer({
      scsAsId,
      certificateThumbprints: [certificateThumbprint(der)],
      scopes,
      signingKeysJson: [JSON.stringify(signingJwk)],
      encryptionKeyJson: JSON.stringify(encryptionPublic),
      signatureProfile: 0,
    });
  } finally {
    admin.close();
  }
  return { scsAsId, certPem: cert.certPem, keyPem: cert.keyPem, der, thumbprint: certificateThumbprint(der), encryptionPrivateJwk };
}
