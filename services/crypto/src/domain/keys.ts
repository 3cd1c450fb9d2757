import { createHmac, createPublicKey, generateKeyPairSync, hkdfSync, randomUUID, sign, timingSafeEqual, verify, createPrivateKey } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { AeseError } from '@aese/errors';
import { seal, unseal } from './sealing.js';
import type { ContentRule } from './signing-rules.js';
import type { SealedSecret } from './sealing.js';

export const KEY_PURPOSES = ['access-token', 'message-signing', 'event-signing', 'audit-signing'] as const;
export type KeyPurpose = (typeof KEY_PURPOSES)[number];
export const KEY_ALGORITHMS = ['ES256', 'EdDSA'] as const;
/** Lifetime of a delegated signing key when none is configured. */
export const DEFAULT_DELEGATION_MS = 60 * 60_000;
export type KeyAlgorithm = (typeof KEY_ALGORITHMS)[number];

/**
 * A signing key as stored: public half in clear, private half sealed under the KEK, and a MAC
 * (keyed from the KEK) over every other field, so that only a holder of the KEK can write a
 * record crypto will apply: no key of one's own, no changed status or expiry.
 */
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
  /** HMAC-SHA256 (base64url) over {@link recordMacInput}, with a key derived from the KEK. */
  readonly mac: string;
}

/** Why a stored key record was not applied. */
export const KEY_RECORD_REJECTIONS = {
  malformed: 'MALFORMED',
  mac: 'MAC_INVALID',
  unseal: 'SEALED_KEY_UNOPENABLE',
  publicKey: 'PUBLIC_KEY_MISMATCH',
  rollback: 'STATUS_ROLLBACK',
} as const;
export type KeyRecordRejection = (typeof KEY_RECORD_REJECTIONS)[keyof typeof KEY_RECORD_REJECTIONS];

/** Persistence of key records; the KV implementation lives outside the domain. */
export interface KeyRecordStore {
  /** Every stored value, unchecked (the custody refuses what it cannot trust), oldest first per kid. */
  list(): Promise<unknown[]>;
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
  /** Told once per distinct record that was not applied (to log and audit it). */
  readonly onRejected?: (kid: string, reason: KeyRecordRejection) => void;
  readonly now?: () => number;
  /** Per purpose, what each caller may sign with it (the place the data names must be the caller's). */
  readonly contentRules?: Readonly<Partial<Record<KeyPurpose, ContentRule>>>;
}

/** The public key set entry returned to callers. */
export type PublishedKey = Omit<KeyRecord, 'sealedPrivateKey' | 'mac'>;

const MAC_LABEL = 'aese key-record mac v1';
/** Distinct refused records remembered, so each is reported once. */
const MAX_REMEMBERED_REJECTIONS = 10_000;

/** The record MAC key: HKDF-SHA256 of the KEK, so one secret (the KEK) guards both. */
export function recordMacKey(kek: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), MAC_LABEL, 32));
}

/** The canonical bytes a record MAC covers: every field, in a fixed order, JWK members sorted. */
export function recordMacInput(r: Omit<KeyRecord, 'mac'>): Buffer {
  const jwk = Object.keys(r.publicJwk)
    .sort()
    .map(k => [k, r.publicJwk[k]]);
  const sealed = [r.sealedPrivateKey.iv, r.sealedPrivateKey.ciphertext, r.sealedPrivateKey.tag];
  return Buffer.from(JSON.stringify([MAC_LABEL, r.kid, r.purpose, r.alg, r.status, r.createdAtMs, r.expiresAtMs, jwk, sealed]), 'utf8');
}

/** Computes a record's MAC. */
export function recordMac(kek: Buffer, r: Omit<KeyRecord, 'mac'>): string {
  return macWith(recordMacKey(kek), r);
}

function macWith(macKey: Buffer, r: Omit<KeyRecord, 'mac'>): string {
  return createHmac('sha256', macKey).update(recordMacInput(r)).digest('base64url');
}

const STATUSES: readonly string[] = ['active', 'retired', 'delegated'];

function isWellFormed(r: unknown): r is KeyRecord {
  if (typeof r !== 'object' || r === null) return false;
  const x = r as Record<string, unknown>;
  const sealed = x['sealedPrivateKey'] as Record<string, unknown> | null | undefined;
  const jwk = x['publicJwk'] as Record<string, unknown> | null | undefined;
  return (
    typeof x['kid'] === 'string' &&
    x['kid'].length > 0 &&
    (KEY_PURPOSES as readonly unknown[]).includes(x['purpose']) &&
    (KEY_ALGORITHMS as readonly unknown[]).includes(x['alg']) &&
    STATUSES.includes(x['status'] as string) &&
    Number.isSafeInteger(x['createdAtMs']) &&
    Number.isSafeInteger(x['expiresAtMs']) &&
    typeof x['mac'] === 'string' &&
    typeof jwk === 'object' &&
    jwk !== null &&
    Object.values(jwk).every(v => typeof v === 'string') &&
    typeof sealed === 'object' &&
    sealed !== null &&
    ['iv', 'ciphertext', 'tag'].every(k => typeof sealed[k] === 'string')
  );
}

/**
 * Key custody: creates, seals, rotates and uses the mesh's signing keys. Private keys leave
 * this object only as signatures.
 */
export class KeyCustody {
  private readonly records = new Map<string, KeyRecord>();
  private readonly privateKeys = new Map<string, KeyObject>();
  private readonly now: () => number;
  /** Derived from the KEK once: every record read or written is MACed with it. */
  private readonly macKey: Buffer;

  constructor(private readonly options: KeyCustodyOptions) {
    this.now = options.now ?? Date.now;
    this.macKey = recordMacKey(options.kek);
  }

  /**
   * Loads the stored keys and creates a first key for any purpose that has none. A store that
   * holds records of which none can be applied was written under another KEK: refuse to start
   * rather than add keys of our own beside them.
   */
  async init(): Promise<void> {
    // Held back until we know the store is ours: a foreign store is one line, not one per record.
    this.heldReports = [];
    const { stored, applied } = await this.load();
    const held = this.heldReports;
    this.heldReports = undefined;
    if (stored > 0 && applied === 0) {
      throw new AeseError(
        'FAILED_PRECONDITION',
        `none of the ${stored} stored key records in the signing-keys bucket opens with CRYPTO_KEK_FILE: that NATS holds another deployment's state, or the KEK is wrong. ` +
          "Point NATS_URL at this deployment's NATS, or start from an empty NATS store (for the private one of `npm start`, remove .state/nats), or supply the right CRYPTO_KEK_FILE",
      );
    }
    for (const [kid, reason] of held) this.options.onRejected?.(kid, reason);
    for (const purpose of KEY_PURPOSES) {
      if (!this.activeRecord(purpose)) await this.rotate(purpose);
    }
  }

  /** Re-reads the store (another replica may have rotated); records that fail the checks are ignored. */
  async reload(): Promise<void> {
    await this.load();
  }

  private async load(): Promise<{ stored: number; applied: number }> {
    const stored: unknown[] = await this.options.store.list();
    let applied = 0;
    for (const r of stored) if (this.apply(r)) applied++;
    return { stored: stored.length, applied };
  }

  /**
   * Applies a stored record (at load or seen on the store's change feed) only if it is well
   * formed, its MAC verifies, its sealed key opens under the KEK and is the private half of its
   * public key, and it does not bring a retired key back to active. Anything else changes
   * nothing: the last good record stays in force.
   * @returns whether the record is now in force.
   */
  apply(candidate: unknown): boolean {
    const reason = this.check(candidate);
    if (reason !== undefined) {
      const kid = typeof (candidate as { kid?: unknown } | null)?.kid === 'string' ? (candidate as { kid: string }).kid : '';
      this.reject(kid, reason, candidate);
      return false;
    }
    const record = candidate as KeyRecord;
    this.records.set(record.kid, record);
    if (record.status !== 'active') return true;
    // Another replica rotated: keep only the newest active key per purpose.
    for (const other of this.records.values()) {
      if (other.purpose === record.purpose && other.kid !== record.kid && other.status === 'active' && other.createdAtMs <= record.createdAtMs) {
        this.records.set(other.kid, { ...other, status: 'retired', expiresAtMs: record.createdAtMs + this.options.retirementMs });
      }
    }
    // An older active record applied after a newer one (load order) is retired the same way.
    const newest = this.activeRecord(record.purpose);
    if (newest && newest.kid !== record.kid) {
      this.records.set(record.kid, { ...record, status: 'retired', expiresAtMs: newest.createdAtMs + this.options.retirementMs });
    }
    return true;
  }

  private check(candidate: unknown): KeyRecordRejection | undefined {
    if (!isWellFormed(candidate)) return KEY_RECORD_REJECTIONS.malformed;
    const { mac, ...rest } = candidate;
    const expected = Buffer.from(macWith(this.macKey, rest), 'base64url');
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return KEY_RECORD_REJECTIONS.mac;
    const current = this.records.get(candidate.kid);
    if (current && current.status !== 'active' && candidate.status === 'active') return KEY_RECORD_REJECTIONS.rollback;
    let key: KeyObject;
    try {
      const der = unseal(this.options.kek, candidate.sealedPrivateKey, sealingContext(candidate.kid, candidate.purpose, candidate.alg));
      key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' });
    } catch {
      return KEY_RECORD_REJECTIONS.unseal;
    }
    if (!samePublicKey(key, candidate.publicJwk, candidate.alg)) return KEY_RECORD_REJECTIONS.publicKey;
    this.privateKeys.set(candidate.kid, key);
    return undefined;
  }

  private readonly rejected = new Set<string>();
  private heldReports: [string, KeyRecordRejection][] | undefined;

  /** Tells about each distinct refused record once (a reload sees the same ones again). */
  private reject(kid: string, reason: KeyRecordRejection, candidate: unknown): void {
    const fingerprint = `${kid}\n${reason}\n${JSON.stringify(candidate) ?? ''}`;
    if (this.rejected.has(fingerprint)) return;
    // Bounded: a flood of distinct forgeries may be reported again, but cannot grow memory.
    if (this.rejected.size >= MAX_REMEMBERED_REJECTIONS) this.rejected.clear();
    this.rejected.add(fingerprint);
    if (this.heldReports) this.heldReports.push([kid, reason]);
    else this.options.onRejected?.(kid, reason);
  }

  async sign(caller: string, purpose: KeyPurpose, data: Uint8Array): Promise<{ kid: string; alg: KeyAlgorithm; signature: Buffer }> {
    if (!this.options.signers[purpose].includes(caller)) {
      throw new AeseError('CALLER_NOT_ALLOWED', `caller may not sign with ${purpose} keys`);
    }
    const rule = this.options.contentRules?.[purpose];
    if (rule && !rule(caller, data)) {
      throw new AeseError('CALLER_NOT_ALLOWED', `caller may not sign this content with ${purpose} keys: it is for a place another service owns`);
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

  /** Active keys, retired keys still inside their verification window, and every event-signing key. */
  published(): PublishedKey[] {
    return [...this.records.values()]
      .filter(r => this.isPublished(r))
      .sort((a, b) => b.createdAtMs - a.createdAtMs)
      .map(({ sealedPrivateKey: _sealed, mac: _mac, ...pub }) => pub);
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
      const retired = this.withMac({ ...previous, status: 'retired', expiresAtMs: now + this.options.retirementMs });
      await this.options.store.put(retired);
      this.records.set(previous.kid, retired);
    }
    const { sealedPrivateKey: _s, mac: _m, ...pub } = record;
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
    const { publicKey, privateKey } = algorithm === 'ES256' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('ed25519');
    const jwk = publicKey.export({ format: 'jwk' }) as Record<string, string>;
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    const record = this.withMac({
      kid,
      purpose,
      alg: algorithm,
      status,
      createdAtMs: now,
      expiresAtMs,
      publicJwk: { ...jwk, kid, alg: algorithm, use: 'sig' },
      sealedPrivateKey: seal(this.options.kek, pkcs8, sealingContext(kid, purpose, algorithm)),
    });
    return { record, privateKey };
  }

  private withMac(r: KeyRecord | Omit<KeyRecord, 'mac'>): KeyRecord {
    const { mac: _old, ...rest } = r as KeyRecord;
    return { ...rest, mac: macWith(this.macKey, rest) };
  }

  private activeRecord(purpose: KeyPurpose): KeyRecord | undefined {
    let best: KeyRecord | undefined;
    for (const r of this.records.values()) {
      if (r.purpose === purpose && r.status === 'active' && (!best || r.createdAtMs > best.createdAtMs)) best = r;
    }
    return best;
  }

  /**
   * Event-signing keys stay published for good: registry entries, policy versions and
   * revocations they signed stay in force long after a rotation, and must keep verifying. (The
   * edge never shows them to application servers; only mesh services verify with them.)
   */
  private isPublished(r: KeyRecord): boolean {
    // Audit-signing keys too: an audit checkpoint must verify for as long as the trail is kept.
    return r.status === 'active' || r.purpose === 'event-signing' || r.purpose === 'audit-signing' || r.expiresAtMs > this.now();
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

/** Whether a private key is the one behind a published JWK (compared member by member). */
function samePublicKey(privateKey: KeyObject, publicJwk: Readonly<Record<string, string>>, alg: KeyAlgorithm): boolean {
  const derived = createPublicKey(privateKey).export({ format: 'jwk' }) as Record<string, string | undefined>;
  const expected = alg === 'ES256' ? { kty: 'EC', crv: 'P-256' } : { kty: 'OKP', crv: 'Ed25519' };
  if (derived['kty'] !== expected.kty || derived['crv'] !== expected.crv) return false;
  return (['kty', 'crv', 'x', 'y'] as const).every(m => derived[m] === publicJwk[m]);
}

function digestOf(alg: KeyAlgorithm): string | null {
  return alg === 'ES256' ? 'sha256' : null;
}

function sealingContext(kid: string, purpose: KeyPurpose, alg: KeyAlgorithm): string {
  return `aese-signing-key:${kid}:${purpose}:${alg}`;
}
