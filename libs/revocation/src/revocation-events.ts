import { Revocation as PbRevocation } from '@aese/protos/events/v1';
import type { Revocation } from './revocation-list.js';

/** Proto type name carried in the signed envelope. */
export const REVOCATION_EVENT_TYPE = 'aese.events.v1.Revocation';

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
  const r = PbRevocation.decode(payload);
  if (r.kind === 'application-server' && r.scsAsId) return { kind: 'application-server', scsAsId: r.scsAsId };
  if (r.kind === 'certificate' && r.certificateThumbprint) return { kind: 'certificate', certificateThumbprint: r.certificateThumbprint };
  if (r.kind === 'token' && r.jti) return { kind: 'token', jti: r.jti, expiresAt: r.tokenExpiresAt };
  return undefined;
}
