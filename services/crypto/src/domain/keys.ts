import { createPublicKey, generateKeyPairSync, randomUUID, sign, verify, createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { AeseError } from '@aese/errors';
import { seal, unseal } from './sealing.js';
import type { SealedSecret } from './sealing.js';

export const KEY_PURPOSES = ['access-token', 'message-signing', 'event-signing'] as const;
export type KeyPurpose = (typeof KEY_PURPOSES)[number];
export const KEY_ALGORITHMS = ['ES256', 'EdDSA'] as const;
/** Lifetime of a delegated signing key when none is configured. */
export const DEFAULT_DELEGATION_MS = 60 * 60_000;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/** A signing key as stored: public half in clear, private half sealed under the KEK. */
export interface KeyRecord {
  readonly kid: string;
  readonly purpose: KeyPurpose;
  readonly alg: KeyAlgorithm;
  /** `delegated`: handed to one edge replica for a short time (message signing without a hop). */
  readonly status: 'active' | 'retired' | 'delegated';
  readonly createdAtMs: number;
  /** When a retired key leaves the JWKS; 0 while active. */
  readonly expiresAtMs: number;
  readonly publicJwk: Readonly<Record<string, string>>;
  readonly sealedPrivateKey: SealedSecret;
}

/** Persistence of key records; the KV implementation lives outside the domain. */
export interface KeyRecordStore {
  list(): Promise<KeyRecord[]>;
  put(record: KeyRecord): Promise<void>;
}

export interface KeyCustodyOptions {
  readonly store: KeyRecordStore;
  readonly kek: Buffer;
  /** Per purpose, the callers (SPIFFE IDs) that may sign with its keys. */
  readonly signers: Readonly<Record<KeyPurpose, readonly string[]>>;
  /** Per purpose, the algorithm of newly created keys. */
  readonly algorithms: Readonly<Record<KeyPurpose, KeyAlgorithm>>;
  /**
   * How long a retired key stays published: at least the lifetime of anything signed with it
   * (the longest token lifetime plus clock leeway).
   */
  readonly retirementMs: number;
  /** Per purpose, the callers that may receive a delegated short-lived key. */
  readonly delegates?: Readonly<Partial<Record<KeyPurpose, readonly string[]>>>;
  /** How long a delegated key may sign. */
  readonly delegationMs?: number;
  readonly now?: () => number;
}

/** The public key set entry returned to callers. */
export type PublishedKey = Omit<KeyRecord, 'sealedPrivateKey'>;

/**
 * Key custody: creates, seals, rotates and uses the mesh's signing keys. Private keys leave
 * this object only as signatures.
 */
export class KeyCustody {
  private readonly records = new Map<string, KeyRecord>();
  private readonly privateKeys = new Map<string, KeyObject>();
  private readonly now: () => number;

  constructor(private readonly options: KeyCustodyOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Loads the stored keys and creates a first key for any purpose that has none. */
  async init(): Promise<void> {
    await this.reload();
    for (const purpose of KEY_PURPOSES) {
      const active = this.activeRecord(purpose);
      // Opening every active key now makes a wrong KEK fail the start, not the first request.
      if (active) this.privateKey(active);
      else await this.rotate(purpose);
    }
  }

  /** Re-reads the store (another replica may have rotated). */
  async reload(): Promise<void> {
    const stored = await this.options.store.list();
    for (const r of stored) this.records.set(r.kid, r);
  }

  /** Applies a record seen on the store's change feed. */
  apply(record: KeyRecord): void {
    this.records.set(record.kid, record);
    if (record.status !== 'active') return;
    // Another replica rotated: keep only the newest active key per purpose.
    for (const other of this.records.values()) {
      if (other.purpose === record.purpose && other.kid !== record.kid && other.status === 'active' && other.createdAtMs <= record.createdAtMs) {
        this.records.set(other.kid, { ...other, status: 'retired', expiresAtMs: record.createdAtMs + this.options.retirementMs });
      }
    }
  }

  async sign(caller: string, purpose: KeyPurpose, data: Uint8Array): Promise<{ kid: string; alg: KeyAlgorithm; signature: Buffer }> {
    if (!this.options.signers[purpose].includes(caller)) {
      throw new AeseError('CALLER_NOT_ALLOWED', `caller may not sign with ${purpose} keys`);
    }
    const record = this.activeRecord(purpose);
    if (!record) throw new AeseError('UNAVAILABLE', `no active ${purpose} key`);
    const key = this.privateKey(record);
    return { kid: record.kid, alg: record.alg, signature: sign(digestOf(record.alg), data, { key, dsaEncoding: 'ieee-p1363' }) };
  }

  verify(kid: string, data: Uint8Array, signature: Uint8Array): boolean {
    const record = this.records.get(kid);
    if (!record || !this.isPublished(record)) return false;
    const key = createPublicKey({ key: record.publicJwk as never, format: 'jwk' });
    try {
      return verify(digestOf(record.alg), data, { key, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      return false;
    }
  }

  /** Active keys and retired keys still inside their verification window. */
  published(): PublishedKey[] {
    return [...this.records.values()]
      .filter(r => this.isPublished(r))
      .sort((a, b) => b.createdAtMs - a.createdAtMs)
      .map(({ sealedPrivateKey: _sealed, ...pub }) => pub);
  }

  /** Creates a new active key for a purpose and retires the previous one. */
  async rotate(purpose: KeyPurpose, alg?: KeyAlgorithm): Promise<{ key: PublishedKey; retiredKid: string | undefined }> {
    const algorithm = alg ?? this.options.algorithms[purpose];
    const now = this.now();
    const previous = this.activeRecord(purpose);
    const kid = `${purpose}-${new Date(now).toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
    const { record, privateKey } = this.generate(kid, purpose, algorithm, now, 'active', 0);
    await this.options.store.put(record);
    this.records.set(kid, record);
    this.privateKeys.set(kid, privateKey);
    if (previous) {
      const retired: KeyRecord = { ...previous, status: 'retired', expiresAtMs: now + this.options.retirementMs };
      await this.options.store.put(retired);
      this.records.set(previous.kid, retired);
    }
    const { sealedPrivateKey: _s, ...pub } = record;
    return { key: pub, retiredKid: previous?.kid };
  }

  /**
   * Creates a short-lived key for one caller and returns its private half. The key is stored
   * sealed and published like any other, so signatures stay verifiable after it expires for
   * the retirement window.
   */
  async delegate(caller: string, purpose: KeyPurpose): Promise<{ kid: string; alg: KeyAlgorithm; pkcs8: Buffer; notAfterMs: number }> {
    if (!(this.options.delegates?.[purpose] ?? []).includes(caller)) {
      throw new AeseError('CALLER_NOT_ALLOWED', `caller may not receive ${purpose} keys`);
    }
    const algorithm = this.options.algorithms[purpose];
    const now = this.now();
    const notAfterMs = now + (this.options.delegationMs ?? DEFAULT_DELEGATION_MS);
    const kid = `${purpose}-delegated-${new Date(now).toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
    const { record, privateKey } = this.generate(kid, purpose, algorithm, now, 'delegated', notAfterMs + this.options.retirementMs);
    await this.options.store.put(record);
    this.records.set(kid, record);
    return { kid, alg: algorithm, pkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }), notAfterMs };
  }

  private generate(
    kid: string,
    purpose: KeyPurpose,
    algorithm: KeyAlgorithm,
    now: number,
    status: KeyRecord['status'],
    expiresAtMs: number,
  ): { record: KeyRecord; privateKey: KeyObject } {
    const { publicKey, privateKey } =
      algorithm === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
    const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>;
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    const record: KeyRecord = {
      kid,
      purpose,
      alg: algorithm,
      status,
      createdAtMs: now,
      expiresAtMs,
      publicJwk: { ...jwk, kid, alg: algorithm, use: 'sig' },
      sealedPrivateKey: seal(this.options.kek, pkcs8, sealingContext(kid, purpose, algorithm)),
    };
    return { record, privateKey };
  }

  private activeRecord(purpose: KeyPurpose): KeyRecord | undefined {
    let best: KeyRecord | undefined;
    for (const r of this.records.values()) {
      if (r.purpose === purpose && r.status === 'active' && (!best || r.createdAtMs > best.createdAtMs)) best = r;
    }
    return best;
  }

  private isPublished(r: KeyRecord): boolean {
    return r.status === 'active' || r.expiresAtMs > this.now();
  }

  private privateKey(record: KeyRecord): KeyObject {
    let key = this.privateKeys.get(record.kid);
    if (!key) {
      const der = unseal(this.options.kek, record.sealedPrivateKey, sealingContext(record.kid, record.purpose, record.alg));
      key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
      this.privateKeys.set(record.kid, key);
    }
    return key;
  }
}

function digestOf(alg: KeyAlgorithm): string | null {
  return alg === 'ES256' ? 'sha256' : null;
}

function sealingContext(kid: string, purpose: KeyPurpose, alg: KeyAlgorithm): string {
  return `aese-signing-key:${kid}:${purpose}:${alg}`;
}
