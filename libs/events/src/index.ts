export {
  AUDIT_STREAM,
  AUDIT_SUBJECT_PREFIX,
  CONTROL_STREAM,
  CONTROL_SUBJECTS,
  controlStreamOf,
  NETWORK_EVENTS_STREAM,
  NETWORK_EVENTS_SUBJECT_PREFIX,
  NOTIFICATION_OUTCOMES_STREAM,
  NOTIFICATION_OUTCOMES_SUBJECT_PREFIX,
  NOTIFICATIONS_STREAM,
  NOTIFICATIONS_SUBJECT_PREFIX,
  TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT,
  TOKEN_REVOCATIONS_STREAM,
  TOKEN_REVOCATIONS_SUBJECT,
} from './subjects.js';
export type { ControlSubject } from './subjects.js';
export {
  EVENT_KEY_REFRESH_COOLDOWN_MS,
  EVENT_KEY_RETRY_AFTER_FAILURE_MS,
  eventSigningJwks,
  isKeysUnavailable,
  JwksEventVerifier,
  KEY_WAIT_BACKOFF_MS,
  signedBytes,
  untilKeysAnswer,
} from './signing.js';
export type { EventSigner, EventVerifier } from './signing.js';
export { CONTROL_CLOCK_SKEW_MS, ControlConsumer, ControlPublisher, controlSignedBytes, ensureControlStream, ensureTokenRevocationStream } from './control.js';
export type { ControlConsumerOptions, ControlFeed, ControlFeedStatus, ControlTampering, RejectedEventReason } from './control.js';
export {
  AuditLog,
  DEFAULT_CHECKPOINT_DELAY_MS,
  NatsAuditSink,
  auditHash,
  checkpointSignedBytes,
  checkpointSubject,
  ensureAuditStream,
  readAuditStream,
  readAuditTrail,
  verifyAuditTrail,
} from './audit.js';
export type { AuditBreak, AuditCheckpoint, AuditEvent, AuditLogOptions, AuditRecord, AuditSink, AuditStreamContents, AuditStreamMessage } from './audit.js';
export { AUDIT_PROBLEMS, verifyKeyedAuditTrail } from './audit-verify.js';
export { auditSigningKeys, cryptoAuditSigner, cryptoEventSigner, cryptoEventVerifier, cryptoSigner } from './crypto-keys.js';
export type { CryptoKeySource, CryptoSigner } from './crypto-keys.js';
export type { AuditProblem, AuditVerificationKey, KeyedAuditBreak, KeyedAuditOptions, KeyedAuditResult } from './audit-verify.js';
export { DEFAULT_STALENESS_BOUND_MS, Freshness } from './freshness.js';
export type { Resyncable } from './freshness.js';
export { KV_TAMPER_REASONS, SIGNED_KV_STATES, SignedKvStore, tamperAuditDetail, UNCHANGED } from './signed-kv.js';
export type { KvTamperFinding, KvTamperReason, SignedKvOptions, SignedKvState, SignedRecord } from './signed-kv.js';
export {
  NOTIFICATION_EVENT_TYPE,
  NOTIFICATION_OUTCOME_EVENT_TYPE,
  NOTIFICATION_OUTCOMES,
  NOTIFICATION_OUTCOMES_MAX_AGE_MS,
  NOTIFICATIONS_DUPLICATE_WINDOW_MS,
  NOTIFICATIONS_MAX_AGE_MS,
  ensureNotificationOutcomeStream,
  ensureNotificationStream,
  notificationObligations,
  notificationOutcomeSubject,
  notificationSubject,
  openNotification,
  openNotificationOutcome,
  signNotification,
  signNotificationOutcome,
} from './notifications.js';
export type { NotificationRefusal } from './notifications.js';
export { consumeTraced, publishTraced, TRACEPARENT_HEADER } from './trace-headers.js';
export {
  ensureNetworkEventStream,
  NETWORK_EVENT_TYPE,
  NETWORK_EVENTS_DUPLICATE_WINDOW_MS,
  NETWORK_EVENTS_MAX_AGE_MS,
  networkEventSubject,
  openNetworkEvent,
  signNetworkEvent,
} from './network-events.js';
export type { NetworkEventRefusal } from './network-events.js';
