/** A revocation as the domain sees it. */
export type Revocation =
  | { readonly kind: 'application-server'; readonly scsAsId: string }
  | { readonly kind: 'certificate'; readonly certificateThumbprint: string }
  | { readonly kind: 'token'; readonly jti: string; readonly expiresAt: number };

/** How often expired token revocations are swept (a sweep per apply would be quadratic on replay). */
const PRUNE_INTERVAL_S = 10;

/**
 * The revoked identities this replica knows of, rebuilt from the revocation streams at start.
 * An AS revocation is permanent: onboarding the same scsAsId again does not lift it. Revoked
 * tokens are forgotten once they would have expired anyway.
 */
export class RevocationList {
  private readonly applicationServers = new Set<string>();
  private readonly certificates = new Set<string>();
  private readonly tokens = new Map<string, number>();
  private nextPruneS = 0;

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

  /** The token revocations still in force (for a snapshot). */
  liveTokens(): { jti: string; expiresAt: number }[] {
    const cutoff = this.nowS() - 60;
    const out: { jti: string; expiresAt: number }[] = [];
    for (const [jti, expiresAt] of this.tokens) if (expiresAt >= cutoff) out.push({ jti, expiresAt });
    return out;
  }

  private prune(): void {
    const now = this.nowS();
    if (now < this.nextPruneS) return;
    this.nextPruneS = now + PRUNE_INTERVAL_S;
    const cutoff = now - 60;
    for (const [jti, exp] of this.tokens) if (exp < cutoff) this.tokens.delete(jti);
  }
}
