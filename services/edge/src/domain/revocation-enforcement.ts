import { AeseError } from '@aese/errors';
import type { Revocation, RevocationList } from '@aese/revocation';
import { ConnectionIdentities } from './connection-identities.js';
import type { ApplicationServer } from './application-server.js';
import { CachingTokenVerifier } from './token-cache.js';
import type { TokenCache, VerifiedToken } from './token-cache.js';

/** A live client connection: the TLS socket (an HTTP/2 session dies with it). */
export interface LiveConnection {
  destroy(): void;
}

/**
 * The edge's open client connections by certificate thumbprint, and which AS each thumbprint
 * belongs to, so a revocation can close every connection of the revoked identity at once.
 */
export class OpenConnections {
  private readonly byThumbprint = new Map<string, Set<LiveConnection>>();
  private readonly thumbprintsByAs = new Map<string, Set<string>>();

  /** Tracks a connection from its handshake until it closes (call the returned function then). */
  add(thumbprint: string, connection: LiveConnection): () => void {
    let set = this.byThumbprint.get(thumbprint);
    if (!set) this.byThumbprint.set(thumbprint, (set = new Set()));
    set.add(connection);
    return () => {
      set.delete(connection);
      if (set.size === 0 && this.byThumbprint.get(thumbprint) === set) this.byThumbprint.delete(thumbprint);
    };
  }

  /** Records that a thumbprint belongs to an AS (learnt when the certificate is resolved). */
  owner(thumbprint: string, scsAsId: string): void {
    let set = this.thumbprintsByAs.get(scsAsId);
    if (!set) this.thumbprintsByAs.set(scsAsId, (set = new Set()));
    set.add(thumbprint);
  }

  /** Closes every connection made with a certificate; returns how many. */
  closeThumbprint(thumbprint: string): number {
    const set = this.byThumbprint.get(thumbprint);
    if (!set) return 0;
    this.byThumbprint.delete(thumbprint);
    for (const c of set) c.destroy();
    return set.size;
  }

  /** Closes every connection of an AS, whatever certificate it used; returns how many. */
  closeAs(scsAsId: string): number {
    let closed = 0;
    for (const t of this.thumbprintsByAs.get(scsAsId) ?? []) closed += this.closeThumbprint(t);
    return closed;
  }
}

/**
 * Identities that also answer to this edge's own revocation list and freshness: a request on a
 * connection of a revoked AS or certificate is refused even before the connection is closed,
 * and when revocation state is stale the edge refuses to decide (UNAVAILABLE → 503).
 */
export class RevocationAwareIdentities extends ConnectionIdentities<ApplicationServer> {
  constructor(
    resolve: (certificateDer: Uint8Array) => Promise<ApplicationServer>,
    private readonly revocations: RevocationList,
    private readonly isFresh: () => boolean,
  ) {
    super(resolve);
  }

  /** Throws (or rejects) UNAVAILABLE while revocations are stale and INVALID_CLIENT for a revoked AS or certificate. */
  override get(connection: object, certificateDer: Uint8Array): ApplicationServer | Promise<ApplicationServer> {
    if (!this.isFresh()) throw new AeseError('UNAVAILABLE', 'revocation state is stale; refusing to decide');
    const check = (as: ApplicationServer): ApplicationServer => {
      if (this.revocations.isApplicationServerRevoked(as.scsAsId) || this.revocations.isCertificateRevoked(as.thumbprint)) {
        throw new AeseError('INVALID_CLIENT', 'client certificate is not registered to an SCS/AS');
      }
      return as;
    };
    const out = super.get(connection, certificateDer);
    return out instanceof Promise ? out.then(check) : check(out);
  }
}

/** Token verifications, cached or not, that a revocation seen by this edge overrides at once. */
export class RevocationAwareTokens extends CachingTokenVerifier {
  constructor(
    cache: TokenCache,
    verify: (token: string, certificateDer: Uint8Array) => Promise<VerifiedToken>,
    private readonly revocations: RevocationList,
  ) {
    super(cache, verify);
  }

  override get(token: string, thumbprint: string, certificateDer: Uint8Array): Promise<VerifiedToken> | VerifiedToken {
    const check = (v: VerifiedToken): VerifiedToken => {
      if (this.revocations.isTokenRevoked(v.jti) || this.revocations.isApplicationServerRevoked(v.scsAsId) || this.revocations.isCertificateRevoked(thumbprint)) {
        throw new AeseError('INVALID_TOKEN', 'the access token is invalid');
      }
      return v;
    };
    const out = super.get(token, thumbprint, certificateDer);
    if (out instanceof Promise) return out.then(check);
    try {
      return check(out);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

/** What a revocation does at this edge beyond refusing later requests: drop caches, close connections. */
export function enforceRevocation(
  r: Revocation,
  targets: { connections: OpenConnections; identities: ConnectionIdentities<ApplicationServer>; tokens: CachingTokenVerifier },
): number {
  if (r.kind === 'token') {
    targets.tokens.invalidateJti(r.jti);
    return 0;
  }
  targets.identities.invalidateAll();
  if (r.kind === 'certificate') {
    targets.tokens.invalidateThumbprint(r.certificateThumbprint);
    return targets.connections.closeThumbprint(r.certificateThumbprint);
  }
  targets.tokens.invalidateScsAsId(r.scsAsId);
  return targets.connections.closeAs(r.scsAsId);
}
