import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import { OPERATOR_NAME, pkiLayout, readMeshTlsMaterial, spiffeId } from '@aese/pki';
import { ApplicationServerStatus, AuthenticationServiceClient, RevocationKind, SignatureProfile } from '@aese/protos/authentication/v1';
import type { ApplicationServer } from '@aese/protos/authentication/v1';
import type { AsRegistry, PublicJwkObject, RegisteredAs } from './registry.js';

/** Options of {@link connectAuthenticationRegistry}. */
export interface AuthenticationRegistryOptions {
  /** host:port of the authentication service; the host must be in its certificate. */
  readonly address: string;
  readonly stateDir: string;
  readonly trustDomain: string;
  readonly deadlineMs?: number;
}

function parseJwk(json: string): PublicJwkObject {
  return JSON.parse(json) as PublicJwkObject;
}

function fromPb(as: ApplicationServer): RegisteredAs {
  const status =
    as.status === ApplicationServerStatus.APPLICATION_SERVER_STATUS_ACTIVE
      ? 'active'
      : as.status === ApplicationServerStatus.APPLICATION_SERVER_STATUS_SUSPENDED
        ? 'suspended'
        : 'unknown';
  return {
    scsAsId: as.scsAsId,
    status,
    signatureProfile: as.signatureProfile === SignatureProfile.SIGNATURE_PROFILE_OPTIONAL ? 'optional' : 'required',
    scopes: [...as.scopes],
    certificateThumbprints: [...as.certificateThumbprints],
    signingKeys: as.signingKeysJson.map(parseJwk),
    encryptionKey: as.encryptionKeyJson === '' ? null : parseJwk(as.encryptionKeyJson),
    createdAt: new Date(as.createdAtMs).toISOString(),
    updatedAt: new Date(as.updatedAtMs).toISOString(),
  };
}

function required(as: ApplicationServer | undefined): ApplicationServer {
  if (!as) throw new AeseError('INTERNAL', 'the authentication service returned no application server');
  return as;
}

/**
 * The AS registry over the authentication service's admin RPCs, called over mTLS with the
 * operator's certificate (`spiffe://<td>/operator/admin`): only that identity is on the admin
 * allow-lists. The server must prove it is `spiffe://<td>/svc/authentication`.
 *
 * @throws Error naming the file when the operator certificate cannot be read.
 */
export function connectAuthenticationRegistry(options: AuthenticationRegistryOptions): AsRegistry {
  const layout = pkiLayout(options.stateDir);
  const client = createMeshClient(AuthenticationServiceClient, {
    address: options.address,
    tls: readMeshTlsMaterial(layout, OPERATOR_NAME),
    serverId: spiffeId(options.trustDomain, 'svc', 'authentication'),
    ...(options.deadlineMs ? { deadlineMs: options.deadlineMs } : {}),
  });
  const call = async <T>(run: () => Promise<T>): Promise<T> => {
    try {
      return await run();
    } catch (err: unknown) {
      if (err instanceof AeseError && err.code === 'UNAVAILABLE') {
        const detail = err.message.replace(/\s*Resolution note:\s*$/, '');
        throw new AeseError('UNAVAILABLE', `cannot reach the authentication service at ${options.address}: ${detail}`, {
          cause: err,
        });
      }
      throw err;
    }
  };
  return {
    register: async reg => {
      const res = await call(() =>
        client.registerApplicationServer({
          scsAsId: reg.scsAsId,
          certificateThumbprints: [...reg.certificateThumbprints],
          scopes: [...reg.scopes],
          signingKeysJson: reg.signingKeys.map(k => JSON.stringify(k)),
          encryptionKeyJson: reg.encryptionKey ? JSON.stringify(reg.encryptionKey) : '',
          signatureProfile: reg.signatureProfile === 'optional' ? SignatureProfile.SIGNATURE_PROFILE_OPTIONAL : SignatureProfile.SIGNATURE_PROFILE_REQUIRED,
        }),
      );
      return fromPb(required(res.applicationServer));
    },
    list: async () => (await call(() => client.listApplicationServers({}))).applicationServers.map(fromPb),
    suspend: async scsAsId => {
      const res = await call(() => client.suspendApplicationServer({ scsAsId }));
      return fromPb(required(res.applicationServer));
    },
    revoke: async (target, reason) => {
      const res = await call(() =>
        client.revoke({
          kind:
            target.kind === 'as'
              ? RevocationKind.REVOCATION_KIND_APPLICATION_SERVER
              : target.kind === 'cert'
                ? RevocationKind.REVOCATION_KIND_CERTIFICATE
                : RevocationKind.REVOCATION_KIND_TOKEN,
          scsAsId: target.kind === 'as' ? target.scsAsId : '',
          certificateThumbprint: target.kind === 'cert' ? target.thumbprint : '',
          jti: target.kind === 'token' ? target.jti : '',
          reason,
        }),
      );
      return res.version;
    },
    close: () => client.close(),
  };
}
