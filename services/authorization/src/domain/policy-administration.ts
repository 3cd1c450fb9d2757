import { AeseError } from '@aese/errors';
import { isKeysUnavailable, signedBytes, untilKeysAnswer } from '@aese/events';
import type { EventSigner, EventVerifier } from '@aese/events';
import type { Logger } from '@aese/logger';
import type { PolicyBundle, PolicyCompiler } from './policy-bundle.js';
import type { ActivePolicies, AuditTrail, PolicyDecisionPoint } from './policy-decision-point.js';

/** What a policy-version signature binds, besides the version: where it is stored and as what. */
export const POLICY_SIGNATURE_SUBJECT = 'kv.aese_policies.current';
export const POLICY_BUNDLE_TYPE = 'aese.authorization.v1.PolicyBundle';

/** Audit actions of policy administration. */
export const POLICY_AUDIT_ACTIONS = {
  /** An operator applied (or tried to apply) a version. */
  apply: 'policy.apply',
  /** A replica refused a version it found in the store. */
  load: 'policy.load',
} as const;

/** Why a stored version was not taken (audit reasons). */
export const REFUSED_VERSION_REASONS = {
  malformed: 'MALFORMED_POLICY_VERSION',
  badSignature: 'BAD_SIGNATURE',
  replayed: 'REPLAYED_POLICY_VERSION',
  stale: 'STALE_POLICY_VERSION',
  invalid: 'INVALID_POLICY_VERSION',
} as const;
type RefusedReason = (typeof REFUSED_VERSION_REASONS)[keyof typeof REFUSED_VERSION_REASONS];

/**
 * The stored form of one policy version (the JetStream KV value). `payload` is the JSON text of
 * {@link PolicyContent}, kept as text so the signed bytes are exactly the stored bytes. The
 * signature (an event-signing key of the crypto service) covers the version, the KV revision
 * the value was written at, and the payload: a forged value has no valid signature, and an old
 * signed value written again lands at a new revision that no longer matches (no rollback).
 */
export interface SignedPolicyVersion {
  readonly version: number;
  readonly revision: number;
  readonly payload: string;
  readonly kid: string;
  /** base64url. */
  readonly signature: string;
}

/** What a version holds. */
export interface PolicyContent {
  readonly policies: string;
  /** Cedar entity JSON (an array). */
  readonly entities: unknown;
  readonly appliedAtMs: number;
}

/** A stored value and the KV revision it sits at. */
export interface StoredEntry {
  /** The parsed value, or undefined when the stored bytes are not JSON. */
  readonly value: unknown;
  readonly revision: number;
}

/** Where versions live; the JetStream KV implementation is outside the domain. */
export interface PolicyStore {
  read(): Promise<StoredEntry | undefined>;
  /** Every stored version still in the history, newest first. */
  history(): Promise<StoredEntry[]>;
  /**
   * Writes the value `build` makes for the revision it will land at, provided the key is still
   * at `expectedRevision` (0: absent). False when another write came first.
   */
  write(expectedRevision: number, build: (landsAt: number) => Promise<unknown>): Promise<boolean>;
  /** Calls back (one at a time) with every stored value, the current one first; returns the stop function. */
  watch(onEntry: (entry: StoredEntry) => Promise<void>): Promise<() => void>;
}

/** The policy set applied when the store has none: the shipped defaults. */
export interface DefaultPolicies {
  readonly policies: string;
  readonly entitiesJson: string;
}

/** What GetPolicies returns. */
export interface PolicySnapshot {
  readonly version: number;
  readonly policies: string;
  readonly entitiesJson: string;
  readonly schema: string;
  readonly appliedAtMs: number;
}

/** Everything policy administration depends on. */
export interface PolicyAdministrationDeps {
  readonly store: PolicyStore;
  readonly compiler: PolicyCompiler;
  readonly pdp: PolicyDecisionPoint;
  readonly signer: EventSigner;
  readonly verifier: EventVerifier;
  readonly audit: AuditTrail;
  readonly logger: Logger;
  readonly now?: () => number;
}

const MAX_KID_LENGTH = 256;
const B64URL = /^[A-Za-z0-9_-]*$/;

function signedPart(version: number, revision: number, payload: string): Uint8Array {
  return signedBytes(POLICY_SIGNATURE_SUBJECT, POLICY_BUNDLE_TYPE, version, Buffer.from(`${revision}\n${payload}`, 'utf8'));
}

function shapeOf(value: unknown): SignedPolicyVersion | undefined {
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const ok =
    Number.isSafeInteger(v['version']) &&
    (v['version'] as number) >= 1 &&
    Number.isSafeInteger(v['revision']) &&
    typeof v['payload'] === 'string' &&
    typeof v['kid'] === 'string' &&
    v['kid'].length <= MAX_KID_LENGTH &&
    typeof v['signature'] === 'string' &&
    B64URL.test(v['signature']);
  return ok ? (v as unknown as SignedPolicyVersion) : undefined;
}

function contentOf(payload: string): PolicyContent | undefined {
  try {
    const c = JSON.parse(payload) as Record<string, unknown>;
    if (typeof c['policies'] !== 'string' || !Array.isArray(c['entities']) || typeof c['appliedAtMs'] !== 'number') return undefined;
    return c as unknown as PolicyContent;
  } catch {
    return undefined;
  }
}

type Examined =
  | { readonly ok: true; readonly version: number; readonly content: PolicyContent; readonly bundle: PolicyBundle }
  | { readonly ok: false; readonly version: number; readonly reason: RefusedReason; readonly detail?: string };

/**
 * Versioned policy administration: validate, sign, store with optimistic concurrency, and
 * follow the store. A replica takes a stored version only if it is signed by the event-signing
 * key, sits at the revision it was signed for, is newer than the current one, and validates
 * against the schema; anything else is ignored, audited and logged, and the last-known-good
 * set keeps deciding (security catalogue case 45).
 */
export class PolicyAdministration {
  private stopWatch: (() => void) | undefined;
  private readonly now: () => number;

  constructor(private readonly deps: PolicyAdministrationDeps) {
    this.now = deps.now ?? Date.now;
  }

  /**
   * Stores the shipped defaults as version 1 when the store is empty, takes the newest stored
   * version that passes every check (falling back through the history), and follows the store.
   */
  async start(defaults: DefaultPolicies): Promise<void> {
    if (!(await this.deps.store.read())) {
      const bundle = this.deps.compiler.compile(defaults.policies, defaults.entitiesJson);
      if (await this.write(0, 1, defaults.policies, bundle)) {
        this.deps.logger.info({ policyVersion: 1 }, 'stored the shipped default policies as version 1');
      }
    }
    for (const entry of await this.deps.store.history()) {
      if (await this.accept(entry)) break;
    }
    if (!this.deps.pdp.current) this.deps.logger.error('no stored policy version passes the checks; every decision is refused until one is applied');
    this.stopWatch = await this.deps.store.watch(entry => this.acceptWhenKeysAre(entry));
  }

  stop(): void {
    this.stopWatch?.();
    this.stopWatch = undefined;
  }

  /** A version seen on the watch waits, while the keys cannot be fetched, instead of being refused. */
  private async acceptWhenKeysAre(entry: StoredEntry): Promise<void> {
    let watching = false;
    await untilKeysAnswer(() => this.accept(entry), {
      // The first attempt may come before start() has kept the watch's stop function.
      stopped: () => watching && this.stopWatch === undefined,
      onWait: () => {
        watching = true;
        this.deps.logger.warn({ policyVersionRevision: entry.revision }, 'event-signing keys unavailable; the policy version waits');
      },
    });
  }

  /**
   * Takes a stored entry if it passes every check and is newer than the current version.
   * @returns true when it became current.
   */
  async accept(entry: StoredEntry): Promise<boolean> {
    const current = this.deps.pdp.current?.version ?? 0;
    const shape = shapeOf(entry.value);
    if (shape && shape.version <= current) {
      if (shape.version < current) this.refused({ ok: false, version: shape.version, reason: REFUSED_VERSION_REASONS.stale }, current);
      return false;
    }
    const examined = await this.examine(entry);
    if (!examined.ok) {
      this.refused(examined, current);
      return false;
    }
    this.deps.pdp.activate({ version: examined.version, appliedAtMs: examined.content.appliedAtMs, bundle: examined.bundle });
    this.deps.logger.info({ policyVersion: examined.version }, 'policy version active');
    return true;
  }

  /**
   * Validates, signs and stores a new version based on `expectedVersion` (0: whatever is
   * current), and audits the attempt under `actor` (the caller's SPIFFE ID).
   *
   * @throws AeseError INVALID_INPUT when validation fails (nothing is stored), FAILED_PRECONDITION
   * when `expectedVersion` is not current or another change won the race.
   */
  async apply(policies: string, entitiesJson: string, expectedVersion: number, actor: string): Promise<number> {
    try {
      const version = await this.applyChecked(policies, entitiesJson, expectedVersion);
      this.deps.audit.record({ actor, action: POLICY_AUDIT_ACTIONS.apply, decision: 'change', reason: 'APPLIED', detail: { policyVersion: version } });
      return version;
    } catch (err: unknown) {
      const code = err instanceof AeseError ? err.code : 'INTERNAL';
      const reason = code === 'INVALID_INPUT' ? 'INVALID_POLICY' : code === 'FAILED_PRECONDITION' ? 'STALE_VERSION' : code;
      this.deps.audit.record({ actor, action: POLICY_AUDIT_ACTIONS.apply, decision: 'deny', reason, detail: { policyVersion: this.deps.pdp.current?.version ?? 0 } });
      throw err;
    }
  }

  /**
   * The version deciding on this replica; version 0 with no policies when none passed the
   * checks, so an operator still sees the schema and can apply a complete new version.
   */
  snapshot(): PolicySnapshot {
    const active = this.deps.pdp.current;
    if (!active) return { version: 0, policies: '', entitiesJson: '[]\n', schema: this.deps.compiler.schema, appliedAtMs: 0 };
    return {
      version: active.version,
      policies: active.bundle.policiesText,
      entitiesJson: `${JSON.stringify(active.bundle.entities, null, 2)}\n`,
      schema: this.deps.compiler.schema,
      appliedAtMs: active.appliedAtMs,
    };
  }

  private async applyChecked(policies: string, entitiesJson: string, expectedVersion: number): Promise<number> {
    if (!Number.isSafeInteger(expectedVersion) || expectedVersion < 0) throw new AeseError('INVALID_INPUT', 'expected_version must be 0 or a version');
    const bundle = this.deps.compiler.compile(policies, entitiesJson);
    const entry = await this.deps.store.read();
    const active = this.deps.pdp.current?.version ?? 0;
    const stored = entry ? await this.examine(entry) : undefined;
    // The version an operator builds on: the stored one if it is good (this replica may lag),
    // else the one deciding. A number seen in the store, good or not, is never reused.
    const current = stored?.ok ? Math.max(stored.version, active) : active;
    if (expectedVersion !== 0 && expectedVersion !== current) {
      throw new AeseError('FAILED_PRECONDITION', `the current policy version is ${current}, not ${expectedVersion}; read it again and re-apply`);
    }
    const version = Math.max(current, stored?.version ?? 0) + 1;
    if (!(await this.write(entry?.revision ?? 0, version, policies, bundle))) {
      throw new AeseError('FAILED_PRECONDITION', 'the policies changed concurrently; read them again and re-apply');
    }
    return version;
  }

  /** Signs and stores a version; on success this replica decides with it at once. */
  private async write(expectedRevision: number, version: number, policies: string, bundle: PolicyBundle): Promise<boolean> {
    const content: PolicyContent = { policies, entities: bundle.entities, appliedAtMs: this.now() };
    const payload = JSON.stringify(content);
    const written = await this.deps.store.write(expectedRevision, async revision => {
      const { kid, signature } = await this.deps.signer.sign(signedPart(version, revision, payload));
      const value: SignedPolicyVersion = { version, revision, payload, kid, signature: Buffer.from(signature).toString('base64url') };
      return value;
    });
    if (!written) return false;
    // The watch may have delivered it already.
    if ((this.deps.pdp.current?.version ?? 0) < version) {
      const active: ActivePolicies = { version, appliedAtMs: content.appliedAtMs, bundle };
      this.deps.pdp.activate(active);
    }
    this.deps.logger.info({ policyVersion: version, policies: Object.keys(bundle.policies).length, applications: bundle.applications.size }, 'policy version applied');
    return true;
  }

  /** Every check but "newer than current": shape, revision, signature, content, schema. */
  private async examine(entry: StoredEntry): Promise<Examined> {
    const shape = shapeOf(entry.value);
    if (!shape) return { ok: false, version: 0, reason: REFUSED_VERSION_REASONS.malformed };
    const { version } = shape;
    if (shape.revision !== entry.revision) return { ok: false, version, reason: REFUSED_VERSION_REASONS.replayed };
    const verified = await this.deps.verifier
      .verify(shape.kid, signedPart(version, shape.revision, shape.payload), Buffer.from(shape.signature, 'base64url'))
      .catch((err: unknown) => {
        // Keys that cannot be fetched are no verdict: the caller waits and asks again.
        if (isKeysUnavailable(err)) throw err;
        return false;
      });
    if (!verified) return { ok: false, version, reason: REFUSED_VERSION_REASONS.badSignature };
    const content = contentOf(shape.payload);
    if (!content) return { ok: false, version, reason: REFUSED_VERSION_REASONS.malformed };
    try {
      return { ok: true, version, content, bundle: this.deps.compiler.compile(content.policies, JSON.stringify(content.entities)) };
    } catch (err: unknown) {
      // A signed version that no longer validates: the schema changed under it, say.
      return { ok: false, version, reason: REFUSED_VERSION_REASONS.invalid, detail: err instanceof AeseError ? err.message : 'unexpected error' };
    }
  }

  private refused(examined: Extract<Examined, { ok: false }>, current: number): void {
    this.deps.audit.record({
      actor: 'unknown',
      action: POLICY_AUDIT_ACTIONS.load,
      decision: 'deny',
      reason: examined.reason,
      detail: { policyVersion: current, offered: examined.version },
    });
    this.deps.logger.error(
      { policyVersion: current, offered: examined.version, reason: examined.reason, ...(examined.detail ? { detail: examined.detail } : {}) },
      'ignored a stored policy version; the last-known-good set keeps deciding',
    );
  }
}
