/** A revocation as the domain sees it. */
export type Revocation =
  | { readonly kind: 'application-server'; readonly scsAsId: string }
  | { readonly kind: 'certificate'; readonly certificateThumbprint: string }
  | { readonly kind: 'token'; readonly jti: string; readonly expiresAt: number };

/**
 * The revoked identities this replica knows of. An AS revocation is permanent: onboarding the
 * same scsAsId again does not lift it., rebuilt from the durable revocation stream at
 * start. Revoked tokens are forgotten once they would have expired anyway.
 */
export class RevocationList {
  private readonly applicationServers = new Set<string>();
  private readonly certificates = new Set<string>();
  private readonly tokens = new Map<string, number>();

  constructor(private readonly nowS: () => number = () => Math.floor(Date.now() / 1000)) {}

  apply(r: Revocation): void {
    if (r.kind === 'application-server') this.applicationServers.add(r.scsAsId);
    else if (r.kind === 'certificate') this.certificates.add(r.certificateThumbprint);
    else if (r.expiresAt > this.nowS()) this.tokens.set(r.jti, r.expiresAt);
    this.prune();
  }

  isApplicationServerRevoked(scsAsId: string): boolean {
    return this.applicationServers.has(scsAsId);
  }

  isCertificateRevoked(thumbprint: string): boolean {
    return this.certificates.has(thumbprint);
  }

  isTokenRevoked(jti: string): boolean {
    const exp = this.tokens.get(jti);
    return exp !== undefined && exp > this.nowS() - 60;
  }

  private prune(): void {
    const cutoff = this.nowS() - 60;
    for (const [jti, exp] of this.tokens) if (exp < cutoff) this.tokens.delete(jti);
  }
}
