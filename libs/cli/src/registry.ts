/** How an AS's T8 requests must be signed: always, or (legacy clients) when they choose to. */
export const SIGNATURE_PROFILES = ['required', 'optional'] as const;
export type SignatureProfileName = (typeof SIGNATURE_PROFILES)[number];

/** Status of an onboarded AS as the CLI shows it. */
export type AsStatusName = 'active' | 'suspended' | 'unknown';

/** A public JWK as registered (never with a private component). */
export type PublicJwkObject = Readonly<Record<string, unknown>>;

/** What onboarding registers for an AS. */
export interface AsRegistration {
  readonly scsAsId: string;
  readonly certificateThumbprints: readonly string[];
  readonly scopes: readonly string[];
  readonly signingKeys: readonly PublicJwkObject[];
  readonly encryptionKey: PublicJwkObject | undefined;
  readonly signatureProfile: SignatureProfileName;
}

/** An onboarded AS as the registry reports it; also the `aese as list --json` record. */
export interface RegisteredAs {
  readonly scsAsId: string;
  readonly status: AsStatusName;
  readonly signatureProfile: SignatureProfileName;
  readonly scopes: readonly string[];
  readonly certificateThumbprints: readonly string[];
  readonly signingKeys: readonly PublicJwkObject[];
  readonly encryptionKey: PublicJwkObject | null;
  readonly createdAt: string;
  readonly updatedAt: string;
}

/**
 * The AS registry as the operator tools see it. The implementation talks to the authentication
 * service; commands depend on this interface only, so they hold no transport code.
 */
export interface AsRegistry {
  register(registration: AsRegistration): Promise<RegisteredAs>;
  list(): Promise<RegisteredAs[]>;
  suspend(scsAsId: string): Promise<RegisteredAs>;
  /** Revokes an AS, a certificate (by thumbprint) or a token (by jti) at every replica; returns the event version. */
  revoke(target: RevocationTarget, reason: string): Promise<number>;
  close(): void;
}

/** What an operator can revoke. */
export type RevocationTarget =
  { readonly kind: 'as'; readonly scsAsId: string } | { readonly kind: 'cert'; readonly thumbprint: string } | { readonly kind: 'token'; readonly jti: string };
