import { randomBytes } from 'node:crypto';

/** W3C Trace Context `traceparent` (version 00): version, trace id, parent id, flags. */
const TRACEPARENT = /^00-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/;

/**
 * The trace id of a request: taken from a well-formed `traceparent` (W3C Trace Context) so the
 * AS's own traces and the SCEF's audit trail line up, otherwise a fresh random one. An all-zero
 * id is invalid by the spec and replaced. Audit events and logs carry it; it is never a secret.
 */
export function traceIdOf(traceparent: readonly string[] | undefined): string {
  if (traceparent?.length === 1) {
    const m = TRACEPARENT.exec(traceparent[0].trim());
    if (m && !/^0+$/.test(m[1])) return m[1];
  }
  return randomBytes(16).toString('hex');
}
