import { randomUUID, X509Certificate } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import type { JSONWebKeySet, JWK } from 'jose';
import { AeseError } from '@aese/errors';
import { isT8Scope, T8_SCOPES } from '@aese/t8-catalog';
import { certificateThumbprint, spiffeId, spiffeIdsOfPeer } from '@aese/pki';
import type { ApplicationServer, Registry } from './registry.js';
import type { RevocationList } from '@aese/revocation';

/** The ceiling on token lifetime the profile allows. */
export const MAX_TOKEN_LIFETIME_S = 600;
/** Clock leeway for `exp`/`nbf`/`iat`. */
export const CLOCK_LEEWAY_S = 10;
/** Tokens longer than this are refused before any parsing. */
export const MAX_TOKEN_BYTES = 8 * 1024;
/** An unknown kid refreshes the key set at most once per this interval. */
export const JWKS_REFRESH_COOLDOWN_MS = 5_000;
export const TOKEN_ALGORITHMS = ['ES256', 'EdDSA'] as const;
/** Header parameters that would let a token choose its own verification key or semantics. */
const FORBIDDEN_HEADER_PARAMS = ['jku', 'x5u', 'jwk', 'x5c', 'x5t', 'x5t#S256', 'crit', 'b64', 'zip'];

/** Signs with the active access-token key, held elsewhere (the crypto service). */
export interface TokenSigner {
  sign(data: Uint8Array): Promise<{ kid: string; alg: string; signature: Uint8Array }>;
}

/** Supplies the public access-token keys (active and still-published retired ones). */
export interface TokenKeySource {
  fetch(): Promise<JWK[]>;
}

export interface TokenServiceOptions {
  readonly issuer: string;
  readonly lifetimeS: number;
  readonly trustDomain: string;
  readonly registry: Registry;
  readonly signer: TokenSigner;
  readonly keys: TokenKeySource;
  readonly revocations: RevocationList;
  /** False while this replica cannot be sure its revocation state is current: refuse then. */
  readonly isFresh: () => boolean;
  readonly now?: () => number;
}

export interface IssueInput {
  readonly certificateDer: Uint8Array;
  readonly grantType: string;
  readonly clientId: string;
  readonly scope: string;
}

export interface IssuedToken {
  readonly accessToken: string;
  readonly expiresIn: number;
  readonly scope: string;
}

export interface VerifiedToken {
  readonly scsAsId: string;
  readonly scopes: string[];
  readonly jti: string;
  readonly expiresAt: number;
}

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/;

/**
 * RFC 9068 access tokens bound to the client certificate (RFC 8705): issued for the AS that
 * owns the presenting certificate, verified only with the mesh's own keys and only over a
 * connection with that same certificate.
 */
export class TokenService {
  private jwks: ReturnType<typeof createLocalJWKSet> | undefined;
  private knownKids = new Set<string>();
  private lastRefreshMs = Number.NEGATIVE_INFINITY;
  private readonly now: () => number;

  constructor(private readonly options: TokenServiceOptions) {
    if (options.lifetimeS < 1 || options.lifetimeS > MAX_TOKEN_LIFETIME_S) {
      throw new TypeError(`token lifetime must be 1..${MAX_TOKEN_LIFETIME_S} s`);
    }
    this.now = options.now ?? Date.now;
  }

  /** The AS a verified T8 client certificate belongs to, or INVALID_CLIENT. */
  async resolveClient(certificateDer: Uint8Array): Promise<ApplicationServer> {
    this.assertFresh();
    const thumbprint = thumbprintOf(certificateDer);
    const as = await this.options.registry.byThumbprint(thumbprint);
    const revoked = this.options.revocations;
    if (!as || !this.certificateNames(certificateDer, as.scsAsId) || revoked.isCertificateRevoked(thumbprint) || revoked.isApplicationServerRevoked(as.scsAsId)) {
      throw new AeseError('INVALID_CLIENT', 'client certificate is not registered to an SCS/AS');
    }
    return as;
  }

  /** Decodes a token of this caller for revocation (RFC 7009); undefined if it is not one. */
  async ownTokenId(token: string, certificateDer: Uint8Array): Promise<{ scsAsId: string; jti: string; expiresAt: number } | undefined> {
    try {
      const v = await this.verifyOrThrow(token, certificateDer);
      return { scsAsId: v.scsAsId, jti: v.jti, expiresAt: v.expiresAt };
    } catch (err) {
      if (err instanceof AeseError && err.code === 'UNAVAILABLE') throw err;
      return undefined;
    }
  }

  private assertFresh(): void {
    if (!this.options.isFresh()) throw new AeseError('UNAVAILABLE', 'revocation state is stale; refusing to decide');
  }

  async issue(input: IssueInput): Promise<IssuedToken> {
    if (input.grantType !== 'client_credentials') {
      throw new AeseError('UNSUPPORTED_GRANT_TYPE', 'only the client_credentials grant is supported');
    }
    const as = await this.resolveClient(input.certificateDer);
    if (as.status !== 'active') throw new AeseError('INVALID_CLIENT', 'client is not active');
    if (input.clientId !== '' && input.clientId !== as.scsAsId) {
      throw new AeseError('INVALID_CLIENT', 'client_id does not match the client certificate');
    }
    const requested = input.scope.split(' ').filter(s => s.length > 0);
    if (requested.some(s => !SCOPE_TOKEN.test(s))) throw new AeseError('INVALID_SCOPE', 'malformed scope');
    // Only served APIs: a registration from before an API stopped being served grants nothing.
    const scopes = requested.length === 0 ? as.scopes.filter(isT8Scope) : [...new Set(requested)];
    if (scopes.some(s => !isT8Scope(s))) throw new AeseError('INVALID_SCOPE', `requested scope is not a served T8 API (served: ${T8_SCOPES.join(' ')})`);
    if (scopes.length === 0) throw new AeseError('INVALID_SCOPE', 'client has no granted scope');
    const ungranted = scopes.filter(s => !as.scopes.includes(s));
    if (ungranted.length > 0) throw new AeseError('INVALID_SCOPE', 'requested scope is not granted to this client');

    const iat = Math.floor(this.now() / 1000);
    const exp = iat + this.options.lifetimeS;
    const scope = scopes.join(' ');
    const claims = {
      iss: this.options.issuer,
      sub: as.scsAsId,
      client_id: as.scsAsId,
      aud: this.options.issuer,
      scope,
      jti: randomUUID(),
      iat,
      nbf: iat,
      exp,
      cnf: { 'x5t#S256': thumbprintOf(input.certificateDer) },
    };
    const accessToken = await this.signJwt(claims);
    return { accessToken, expiresIn: this.options.lifetimeS, scope };
  }

  async verify(token: string, certificateDer: Uint8Array): Promise<VerifiedToken> {
    try {
      return await this.verifyOrThrow(token, certificateDer);
    } catch (err) {
      if (err instanceof AeseError && err.code === 'UNAVAILABLE') throw err;
      // One answer for every failure: no oracle on which check failed.
      throw new AeseError('INVALID_TOKEN', 'the access token is invalid', { cause: err });
    }
  }

  private async verifyOrThrow(token: string, certificateDer: Uint8Array): Promise<VerifiedToken> {
    this.assertFresh();
    if (token.length === 0 || token.length > MAX_TOKEN_BYTES) throw new Error('token size');
    const header = decodeProtectedHeader(token);
    for (const p of FORBIDDEN_HEADER_PARAMS) if (p in header) throw new Error(`header parameter ${p}`);
    if (typeof header.kid !== 'string' || header.kid.length === 0 || header.kid.length > 128) throw new Error('kid');
    const jwks = await this.keySetFor(header.kid);
    const { payload } = await jwtVerify(token, jwks, {
      issuer: this.options.issuer,
      audience: this.options.issuer,
      typ: 'at+jwt',
      algorithms: [...TOKEN_ALGORITHMS],
      clockTolerance: CLOCK_LEEWAY_S,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id', 'scope', 'cnf'],
      currentDate: new Date(this.now()),
    });
    const iat = payload.iat!;
    const exp = payload.exp!;
    if (iat > this.now() / 1000 + CLOCK_LEEWAY_S) throw new Error('iat in the future');
    if (exp - iat > MAX_TOKEN_LIFETIME_S) throw new Error('lifetime');
    const cnf = payload['cnf'] as Record<string, unknown> | undefined;
    if (!cnf || cnf['x5t#S256'] !== thumbprintOf(certificateDer)) throw new Error('certificate binding');
    const as = await this.resolveClient(certificateDer);
    if (payload['client_id'] !== as.scsAsId || payload.sub !== as.scsAsId) throw new Error('client_id');
    if (as.status !== 'active') throw new Error('client suspended');
    const scope = payload['scope'];
    if (typeof scope !== 'string') throw new Error('scope');
    if (typeof payload.jti !== 'string') throw new Error('jti');
    if (this.options.revocations.isTokenRevoked(payload.jti)) throw new Error('revoked');
    return { scsAsId: as.scsAsId, scopes: scope.split(' ').filter(s => s.length > 0), jti: payload.jti, expiresAt: exp };
  }

  private async signJwt(claims: Record<string, unknown>): Promise<string> {
    // The header names the algorithm and kid of the key the signer will use; the signer reports
    // both, and a mismatch (a rotation in between) is retried once with the reported key.
    for (let attempt = 0; attempt < 2; attempt++) {
      const key = await this.activeKeyHint();
      const header = { alg: key.alg, typ: 'at+jwt', kid: key.kid };
      const input = `${b64u(JSON.stringify(header))}.${b64u(JSON.stringify(claims))}`;
      const out = await this.options.signer.sign(new TextEncoder().encode(input));
      if (out.kid === key.kid && out.alg === key.alg) return `${input}.${Buffer.from(out.signature).toString('base64url')}`;
      this.lastRefreshMs = Number.NEGATIVE_INFINITY;
      this.jwks = undefined;
    }
    throw new AeseError('UNAVAILABLE', 'signing key changed during issuance');
  }

  private activeKey: { kid: string; alg: string } | undefined;

  private async activeKeyHint(): Promise<{ kid: string; alg: string }> {
    if (!this.activeKey || !this.jwks) await this.refresh();
    if (!this.activeKey) throw new AeseError('UNAVAILABLE', 'no access-token signing key');
    return this.activeKey;
  }

  private async keySetFor(kid: string): Promise<ReturnType<typeof createLocalJWKSet>> {
    if (!this.jwks || (!this.knownKids.has(kid) && this.now() - this.lastRefreshMs >= JWKS_REFRESH_COOLDOWN_MS)) {
      await this.refresh();
    }
    if (!this.jwks) throw new AeseError('UNAVAILABLE', 'no verification keys');
    return this.jwks;
  }

  /** Re-reads the published keys; the first one listed is the active key. */
  async refresh(): Promise<void> {
    const keys = await this.options.keys.fetch();
    this.lastRefreshMs = this.now();
    const set: JSONWebKeySet = { keys: keys.map(k => ({ ...k })) };
    this.jwks = createLocalJWKSet(set);
    this.knownKids = new Set(keys.map(k => k.kid!).filter(Boolean));
    const first = keys[0];
    this.activeKey = first?.kid && first.alg ? { kid: first.kid, alg: first.alg } : undefined;
  }

  private certificateNames(der: Uint8Array, scsAsId: string): boolean {
    const cert = new X509Certificate(der);
    const ids = spiffeIdsOfPeer({ subjectaltname: cert.subjectAltName ?? '' });
    return ids.length === 1 && ids[0] === spiffeId(this.options.trustDomain, 'as', scsAsId);
  }
}

/** RFC 8705 `x5t#S256` of a DER certificate. */
export function thumbprintOf(der: Uint8Array): string {
  return certificateThumbprint(der);
}

function b64u(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64url');
}
