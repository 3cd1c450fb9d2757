import { createPublicKey, verify } from 'node:crypto';
import type { JsonWebKey } from 'node:crypto';
import { chainFaults, checkpointSignedBytes, isCheckpoint } from './audit.js';
import type { AuditCheckpoint, AuditEvent, AuditStreamContents } from './audit.js';

/** What {@link verifyKeyedAuditTrail} can find wrong; each names a chain (or the stream). */
export const AUDIT_PROBLEMS = {
  /** Stream positions that were written and are gone (deleted, purged or cut off the tail). */
  deleted: 'DELETED',
  /** A gap in a chain's sequence. */
  missing: 'MISSING',
  outOfOrder: 'OUT_OF_ORDER',
  /** An event whose hash or link to the previous event is wrong. */
  altered: 'ALTERED',
  malformed: 'MALFORMED',
  /** A checkpoint whose signature does not verify with a published audit-signing key. */
  forgedCheckpoint: 'FORGED_CHECKPOINT',
  /** The event a checkpoint signed is not at its position any more (removed, re-hashed or moved). */
  checkpointMismatch: 'CHECKPOINT_MISMATCH',
  /** Events a checkpoint covers are gone from the chain's end. */
  truncated: 'TRUNCATED',
  /** Checkpoints of a chain whose events are all gone. */
  chainMissing: 'CHAIN_MISSING',
  /** A chain no checkpoint ever covered, older than the grace period. */
  unsealed: 'UNSEALED',
} as const;
export type AuditProblem = (typeof AUDIT_PROBLEMS)[keyof typeof AUDIT_PROBLEMS];

/** One finding: the chain (`stream` for positions of unknown chains), where, and what. */
export interface KeyedAuditBreak {
  readonly chain: string;
  readonly problem: AuditProblem;
  readonly detail: string;
}

/** A public audit-signing key as crypto publishes it. */
export interface AuditVerificationKey {
  readonly kid: string;
  readonly alg: string;
  readonly jwk: JsonWebKey;
}

export interface KeyedAuditResult {
  readonly chains: number;
  readonly events: number;
  readonly checkpoints: number;
  readonly breaks: KeyedAuditBreak[];
  /** Events after their chain's last checkpoint (the latest burst, or a writer that crashed). */
  readonly unsealed: { readonly chain: string; readonly fromSeq: number; readonly toSeq: number }[];
}

export interface KeyedAuditOptions {
  readonly nowMs: number;
  /** A chain with no checkpoint at all fails once its first event is older than this. */
  readonly graceMs: number;
}

interface Located<T> {
  readonly position: number;
  readonly storedAtMs: number;
  readonly value: T;
}

const isEvent = (b: unknown): b is AuditEvent => {
  const e = b as Partial<AuditEvent> | null;
  return typeof e === 'object' && e !== null && typeof e.chain === 'string' && typeof e.seq === 'number' && typeof e.hash === 'string' && typeof e.prevHash === 'string';
};

const isCheckpointShape = (b: unknown): b is AuditCheckpoint => {
  const c = b as Partial<AuditCheckpoint>;
  return (
    typeof c.service === 'string' &&
    typeof c.chain === 'string' &&
    Number.isSafeInteger(c.seq) &&
    typeof c.hash === 'string' &&
    Number.isSafeInteger(c.position) &&
    typeof c.at === 'string' &&
    typeof c.kid === 'string' &&
    typeof c.signature === 'string'
  );
};

function signatureValid(c: AuditCheckpoint, keys: ReadonlyMap<string, AuditVerificationKey>): boolean {
  const key = keys.get(c.kid);
  if (!key) return false;
  try {
    const pub = createPublicKey({ key: key.jwk, format: 'jwk' });
    return verify(key.alg === 'ES256' ? 'sha256' : null, checkpointSignedBytes(c), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(c.signature, 'base64url'));
  } catch {
    return false;
  }
}

/** `a..b` or `a` for a run of positions. */
const range = (a: number, b: number): string => (a === b ? `${a}` : `${a}..${b}`);

/**
 * Verifies the audit stream with the crypto service's audit-signing keys. Three layers, each
 * catching what the others cannot:
 * - the stream: every position from 1 to last_seq must be there (JetStream never lowers
 *   last_seq, so a deleted, purged or cut-off message leaves a hole);
 * - each chain: seq without gaps, each hash right and linked to the previous one;
 * - signed checkpoints: each must verify, and the event at the position it names must be the
 *   one it signed; so a stream rebuilt by an administrator with re-hashed, reordered or dropped
 *   chains fails at every checkpoint after the change, and a checkpointed tail cannot be cut.
 */
export function verifyKeyedAuditTrail(stream: AuditStreamContents, keys: ReadonlyMap<string, AuditVerificationKey>, options: KeyedAuditOptions): KeyedAuditResult {
  const breaks: KeyedAuditBreak[] = [];

  // Layer 1: holes in the stream.
  const present = new Set(stream.messages.map(m => m.position));
  let runStart = 0;
  for (let p = 1; p <= stream.lastSeq + 1; p++) {
    const missing = p <= stream.lastSeq && !present.has(p);
    if (missing && runStart === 0) runStart = p;
    if (!missing && runStart !== 0) {
      breaks.push({ chain: 'stream', problem: AUDIT_PROBLEMS.deleted, detail: `messages ${range(runStart, p - 1)} of ${stream.lastSeq} were deleted` });
      runStart = 0;
    }
  }

  // Sort messages into events per chain and checkpoints per chain.
  const byPosition = new Map<number, AuditEvent>();
  const chains = new Map<string, Located<AuditEvent>[]>();
  const checkpoints = new Map<string, Located<AuditCheckpoint>[]>();
  let events = 0;
  let checkpointCount = 0;
  for (const m of stream.messages) {
    if (isCheckpoint(m.body)) {
      checkpointCount++;
      if (!isCheckpointShape(m.body) || !signatureValid(m.body, keys)) {
        const chain = typeof (m.body as { chain?: unknown }).chain === 'string' ? (m.body as { chain: string }).chain : 'stream';
        breaks.push({ chain, problem: AUDIT_PROBLEMS.forgedCheckpoint, detail: `checkpoint at message ${m.position} is not signed by a crypto audit-signing key` });
        continue;
      }
      const list = checkpoints.get(m.body.chain) ?? [];
      list.push({ position: m.position, storedAtMs: m.storedAtMs, value: m.body });
      checkpoints.set(m.body.chain, list);
      continue;
    }
    events++;
    if (!isEvent(m.body)) {
      breaks.push({ chain: 'stream', problem: AUDIT_PROBLEMS.malformed, detail: `message ${m.position} is neither an audit event nor a checkpoint` });
      continue;
    }
    byPosition.set(m.position, m.body);
    const list = chains.get(m.body.chain) ?? [];
    list.push({ position: m.position, storedAtMs: m.storedAtMs, value: m.body });
    chains.set(m.body.chain, list);
  }

  // Layer 2: each chain's own links.
  for (const [chain, list] of chains) {
    for (const f of chainFaults(list.map(e => e.value))) {
      if (f.problem === 'OUT_OF_ORDER') breaks.push({ chain, problem: AUDIT_PROBLEMS.outOfOrder, detail: `event ${f.seq} after event ${f.after}` });
      else if (f.problem === 'MISSING')
        breaks.push({ chain, problem: AUDIT_PROBLEMS.missing, detail: f.seq === f.through ? `event ${f.seq} is missing` : `events ${range(f.seq, f.through!)} are missing` });
      else if (f.problem === 'ALTERED') breaks.push({ chain, problem: AUDIT_PROBLEMS.altered, detail: `event ${f.seq} does not match its hash chain` });
    }
  }

  // Layer 3: checkpoints against the events they signed.
  const unsealed: { chain: string; fromSeq: number; toSeq: number }[] = [];
  for (const [chain, list] of checkpoints) {
    const chainEvents = chains.get(chain);
    if (!chainEvents) {
      const last = list[list.length - 1].value;
      breaks.push({ chain, problem: AUDIT_PROBLEMS.chainMissing, detail: `${last.service} chain signed up to event ${last.seq} has no events left` });
      continue;
    }
    let sealed = 0;
    for (const { position, value: c } of list) {
      const at = byPosition.get(c.position);
      if (c.seq < sealed) breaks.push({ chain, problem: AUDIT_PROBLEMS.outOfOrder, detail: `checkpoint at message ${position} (event ${c.seq}) after one for event ${sealed}` });
      if (c.position >= position || !at || at.chain !== c.chain || at.service !== c.service || at.seq !== c.seq || at.hash !== c.hash) {
        breaks.push({
          chain,
          problem: AUDIT_PROBLEMS.checkpointMismatch,
          detail: `event ${c.seq} signed at message ${c.position} is not there as signed (removed, re-hashed or moved)`,
        });
      }
      sealed = Math.max(sealed, c.seq);
    }
    const lastSeq = Math.max(...chainEvents.map(e => e.value.seq));
    if (lastSeq < sealed) breaks.push({ chain, problem: AUDIT_PROBLEMS.truncated, detail: `signed up to event ${sealed}, only ${lastSeq} left` });
    else if (lastSeq > sealed) unsealed.push({ chain, fromSeq: sealed + 1, toSeq: lastSeq });
  }
  for (const [chain, list] of chains) {
    if (checkpoints.has(chain)) continue;
    const first = list[0];
    const lastSeq = Math.max(...list.map(e => e.value.seq));
    if (options.nowMs - first.storedAtMs > options.graceMs) {
      breaks.push({ chain, problem: AUDIT_PROBLEMS.unsealed, detail: `${first.value.service} chain of ${list.length} events has no valid checkpoint` });
    } else unsealed.push({ chain, fromSeq: 1, toSeq: lastSeq });
  }
  return { chains: chains.size, events, checkpoints: checkpointCount, breaks, unsealed };
}
