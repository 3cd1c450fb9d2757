import { ChannelCredentials } from '@grpc/grpc-js';
import { spiffeIdsOfPeer } from '@aese/pki';

/** Deadline for calls that do not set one. */
export const DEFAULT_CLIENT_DEADLINE_MS = 5_000;

/** Largest message sent or received unless a client says otherwise. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * mTLS channel credentials with the mesh CA that accept the server only if its certificate
 * carries exactly the expected SPIFFE ID.
 */
export function meshChannelCredentials(options: {
  readonly tls: { readonly caPem: string; readonly certPem: string; readonly keyPem: string };
  readonly serverId: string;
}): ChannelCredentials {
  return ChannelCredentials.createSsl(Buffer.from(options.tls.caPem), Buffer.from(options.tls.keyPem), Buffer.from(options.tls.certPem), {
    checkServerIdentity: (_host, cert) => {
      const ids = spiffeIdsOfPeer(cert);
      if (ids.length !== 1 || ids[0] !== options.serverId) {
        return new Error(`server identity is not ${options.serverId}`);
      }
      return undefined;
    },
  });
}
