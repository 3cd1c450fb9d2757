import { AeseError } from '@aese/errors';
import { isT8Scope, T8_SCOPES } from '@aese/t8-catalog';

export type ApplicationServerStatus = 'active' | 'suspended';
export type SignatureProfile = 'required' | 'optional';
export type PublicJwk = Readonly<Record<string, string>>;

/** An onboarded SCS/AS. */
export interface ApplicationServer {
  readonly scsAsId: string;
  readonly certificateThumbprints: readonly string[];
  readonly scopes: readonly string[];
  readonly signingKeys: readonly PublicJwk[];
  readonly encryptionKey: PublicJwk | undefined;
  readonly status: ApplicationServerStatus;
  readonly signatureProfile: SignatureProfile;
  readonly createdAtMs: number;
  readonly updatedAtMs: number;
}

/** Persistence of the registry; the KV implementation lives outside the domain. */
export interface ApplicationServerStore {
  get(scsAsId: string): Promise<ApplicationServer | undefined>;
  list(): Promise<ApplicationServer[]>;
  put(as: ApplicationServer): Promise<void>;
  /** The scsAsId a certificate thumbprint is registered to. */
  findByThumbprint(thumbprint: string): Promise<string | undefined>;
  /** Records thumbprint -> scsAsId; fails with ALREADY_EXISTS if it belongs to another AS. */
  bindThumbprint(thumbprint: string, scsAsId: string): Promise<void>;
}

export interface RegistrationInput {
  readonly scsAsId: string;
  readonly certificateThumbprints: readonly string[];
  readonly scopes: readonly string[];
  readonly signingKeys: readonly unknown[];
  readonly encryptionKey: unknown;
  readonly signatureProfile: SignatureProfile | undefined;
}

const SCS_AS_ID = /^[A-Za-z0-9._-]{1,64}$/;
const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const KID = /^[A-Za-z0-9._:-]{1,128}$/;
const B64URL = /^[A-Za-z0-9_-]+$/;
const MAX_SIGNING_KEYS = 8;

/** Validates an scsAsId; it appears in URLs, KV keys and SPIFFE IDs. */
export function assertScsAsId(id: string): void {
  if (!SCS_AS_ID.test(id)) throw new AeseError('INVALID_INPUT', 'scsAsId must be 1-64 characters of [A-Za-z0-9._-]');
}

function publicJwk(value: unknown, use: 'sig' | 'enc', field: string): PublicJwk {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new AeseError('INVALID_INPUT', `${field} must be a JWK object`);
  }
  const jwk = value as Record<string, unknown>;
  if ('d' in jwk) throw new AeseError('INVALID_INPUT', `${field} must be a public key (it has a private component)`);
  const { kty, crv, x, y, kid } = jwk;
  const allowed =
    use === 'sig'
      ? [
          ['EC', 'P-256'],
          ['OKP', 'Ed25519'],
        ]
      : [
          ['EC', 'P-256'],
          ['OKP', 'X25519'],
        ];
  if (!allowed.some(([k, c]) => k === kty && c === crv)) {
    throw new AeseError('INVALID_INPUT', `${field} must be ${allowed.map(([k, c]) => `${k}/${c}`).join(' or ')}`);
  }
  if (typeof x !== 'string' || !B64URL.test(x) || (kty === 'EC' && (typeof y !== 'string' || !B64URL.test(y)))) {
    throw new AeseError('INVALID_INPUT', `${field} has malformed coordinates`);
  }
  if (typeof kid !== 'string' || !KID.test(kid)) throw new AeseError('INVALID_INPUT', `${field} needs a kid of [A-Za-z0-9._:-]{1,128}`);
  const out: Record<string, string> = { kty: kty as string, crv: crv as string, x, kid, use };
  if (kty === 'EC') out['y'] = y as string;
  return out;
}

/** Builds a registry entry from operator input, refusing anything malformed. */
export function newRegistration(input: RegistrationInput, existing: ApplicationServer | undefined, nowMs: number): ApplicationServer {
  assertScsAsId(input.scsAsId);
  if (input.certificateThumbprints.length === 0) throw new AeseError('INVALID_INPUT', 'at least one certificate thumbprint is required');
  for (const t of input.certificateThumbprints) {
    if (!THUMBPRINT.test(t)) throw new AeseError('INVALID_INPUT', 'certificate thumbprints must be base64url SHA-256 (43 characters)');
  }
  for (const s of input.scopes) {
    if (!isT8Scope(s)) throw new AeseError('INVALID_INPUT', `scope ${s} is not a T8 API this SCEF serves (served: ${T8_SCOPES.join(', ')})`);
  }
  if (input.signingKeys.length > MAX_SIGNING_KEYS) throw new AeseError('INVALID_INPUT', `at most ${MAX_SIGNING_KEYS} signing keys`);
  const signingKeys = input.signingKeys.map((k, i) => publicJwk(k, 'sig', `signingKeys[${i}]`));
  if (new Set(signingKeys.map(k => k['kid'])).size !== signingKeys.length) throw new AeseError('INVALID_INPUT', 'signing key kids must be unique');
  return {
    scsAsId: input.scsAsId,
    certificateThumbprints: [...new Set(input.certificateThumbprints)],
    scopes: [...new Set(input.scopes)],
    signingKeys,
    encryptionKey: input.encryptionKey === undefined ? undefined : publicJwk(input.encryptionKey, 'enc', 'encryptionKey'),
    status: existing?.status ?? 'active',
    signatureProfile: input.signatureProfile ?? 'required',
    createdAtMs: existing?.createdAtMs ?? nowMs,
    updatedAtMs: nowMs,
  };
}

/** The registry operations: onboarding, listing, suspension and certificate lookup. */
export class Registry {
  /**
   * @param onChange told of every registration and suspension after it is stored (to tell other
   *   services, which drop what they cached about the AS).
   */
  constructor(
    private readonly store: ApplicationServerStore,
    private readonly onChange: (as: ApplicationServer) => Promise<void> = async () => undefined,
    private readonly now: () => number = Date.now,
    /** Whether an scsAsId is revoked; may throw UNAVAILABLE while the revocations are not loaded. */
    private readonly isRevoked: (scsAsId: string) => boolean = () => false,
  ) {}

  async register(input: RegistrationInput): Promise<ApplicationServer> {
    assertScsAsId(input.scsAsId);
    // A revoked AS would be registered but refused every token: say so instead.
    if (this.isRevoked(input.scsAsId)) {
      throw new AeseError('FAILED_PRECONDITION', `SCS/AS ${input.scsAsId} is revoked and a revocation is permanent (it cannot be lifted): onboard the AS under a new scsAsId`);
    }
    const existing = await this.store.get(input.scsAsId);
    const as = newRegistration(input, existing, this.now());
    for (const t of as.certificateThumbprints) await this.store.bindThumbprint(t, as.scsAsId);
    await this.store.put(as);
    await this.onChange(as);
    return as;
  }

  list(): Promise<ApplicationServer[]> {
    return this.store.list();
  }

  async get(scsAsId: string): Promise<ApplicationServer> {
    assertScsAsId(scsAsId);
    const as = await this.store.get(scsAsId);
    if (!as) throw new AeseError('NOT_FOUND', 'no such SCS/AS');
    return as;
  }

  async suspend(scsAsId: string): Promise<ApplicationServer> {
    assertScsAsId(scsAsId);
    const as = await this.store.get(scsAsId);
    if (!as) throw new AeseError('NOT_FOUND', 'no such SCS/AS');
    const suspended: ApplicationServer = { ...as, status: 'suspended', updatedAtMs: this.now() };
    await this.store.put(suspended);
    await this.onChange(suspended);
    return suspended;
  }

  /** The AS a certificate is registered to, whatever its status; undefined if none. */
  async byThumbprint(thumbprint: string): Promise<ApplicationServer | undefined> {
    const id = await this.store.findByThumbprint(thumbprint);
    if (!id) return undefined;
    const as = await this.store.get(id);
    // The index may outlive a re-registration that dropped the certificate.
    return as && as.certificateThumbprints.includes(thumbprint) ? as : undefined;
  }
}
