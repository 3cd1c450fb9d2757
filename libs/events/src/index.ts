export { AUDIT_STREAM, AUDIT_SUBJECT_PREFIX, CONTROL_STREAM, CONTROL_SUBJECTS } from './subjects.js';
export type { ControlSubject } from './subjects.js';
export { EVENT_KEY_REFRESH_COOLDOWN_MS, JwksEventVerifier, signedBytes } from './signing.js';
export type { EventSigner, EventVerifier } from './signing.js';
export { ControlConsumer, ControlPublisher, ensureControlStream } from './control.js';
export type { ControlConsumerOptions, RejectedEventReason } from './control.js';
export { AuditLog, NatsAuditSink, auditHash, ensureAuditStream, readAuditTrail, verifyAuditTrail } from './audit.js';
export type { AuditBreak, AuditEvent, AuditRecord, AuditSink } from './audit.js';
