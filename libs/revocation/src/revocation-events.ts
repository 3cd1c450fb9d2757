import { CONTROL_SUBJECTS, TOKEN_REVOCATIONS_SUBJECT } from '@aese/events';
import type { ControlSubject } from '@aese/events';
import { Revocation as PbRevocation, RevocationSnapshot } from '@aese/protos/events/v1';
import type { Revocation } from './revocation-list.js';

/** Proto type name carried in the signed envelope. */
export const REVOCATION_EVENT_TYPE = 'aese.events.v1.Revocation';
export const REVOCATION_SNAPSHOT_TYPE = 'aese.events.v1.RevocationSnapshot';

/**
 * Margin the token-revocation retention keeps over the token lifetime: the token verifier's
 * clock leeway (10 s), the control consumers' clock-skew allowance (5 s) and room to spare.
 */
export const TOKEN_REVOCATION_LEEWAY_S = 30;
/** Retention of token revocations when none is configured: the longest token (600 s) and more. */
export const DEFAULT_TOKEN_REVOCATION_RETENTION_S = 900;

/**
 * Where a revocation is published: AS and certificate revocations are permanent and few
 * (operator actions) and stay in the control stream; token revocations go to a stream whose
 * retention lets them leave with the tokens.
 */
export function revocationSubject(r: Revocation): ControlSubject {
  return r.kind === 'token' ? TOKEN_REVOCATIONS_SUBJECT : CONTROL_SUBJECTS.revocations;
}

export function encodeRevocation(r: Revocation, nowMs: number): Uint8Array {
  return PbRevocation.encode({
    kind: r.kind,
    scsAsId: r.kind === 'application-server' ? r.scsAsId : '',
    certificateThumbprint: r.kind === 'certificate' ? r.certificateThumbprint : '',
    jti: r.kind === 'token' ? r.jti : '',
    tokenExpiresAt: r.kind === 'token' ? r.expiresAt : 0,
    revokedAtMs: nowMs,
  }).finish();
}

/** Decodes a verified revocation payload; undefined for a kind this version does not know. */
export function decodeRevocation(payload: Uint8Array): Revocation | undefined {
  return decodeRevocationEvent(payload)?.revocation;
}

/** A verified revocation payload with the time its publisher revoked (ms since the epoch), for the enforcement lag. */
export function decodeRevocationEvent(payload: Uint8Array): { revocation: Revocation; revokedAtMs: number } | undefined {
  const r = PbRevocation.decode(payload);
  const revokedAtMs = r.revokedAtMs;
  if (r.kind === 'application-server' && r.scsAsId) return { revocation: { kind: 'application-server', scsAsId: r.scsAsId }, revokedAtMs };
  if (r.kind === 'certificate' && r.certificateThumbprint) return { revocation: { kind: 'certificate', certificateThumbprint: r.certificateThumbprint }, revokedAtMs };
  if (r.kind === 'token' && r.jti) return { revocation: { kind: 'token', jti: r.jti, expiresAt: r.tokenExpiresAt }, revokedAtMs };
  return undefined;
}

/** A snapshot of the token revocations in force once the stream was applied up to `coversThroughSeq`. */
export function encodeTokenSnapshot(tokens: readonly { jti: string; expiresAt: number }[], coversThroughSeq: number): Uint8Array {
  return RevocationSnapshot.encode({
    revocations: tokens.map(t => ({ kind: 'token', scsAsId: '', certificateThumbprint: '', jti: t.jti, tokenExpiresAt: t.expiresAt, revokedAtMs: 0 })),
    coversThroughSeq,
  }).finish();
}

/** The token revocations of a verified snapshot (anything else in it is ignored) and the sequence it covers. */
export function decodeTokenSnapshot(payload: Uint8Array): { tokens: Revocation[]; coversThroughSeq: number } {
  const snapshot = RevocationSnapshot.decode(payload);
  return {
    tokens: snapshot.revocations.filter(r => r.kind === 'token' && r.jti).map(r => ({ kind: 'token', jti: r.jti, expiresAt: r.tokenExpiresAt })),
    coversThroughSeq: snapshot.coversThroughSeq,
  };
}
