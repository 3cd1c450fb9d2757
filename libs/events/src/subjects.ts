/** The JetStream stream that carries signed control events (revocations, policies, registry, keys). */
export const CONTROL_STREAM = 'AESE_CONTROL';

/** One subject per kind of control event; each subject has its own version sequence. */
export const CONTROL_SUBJECTS = {
  revocations: 'aese.control.v1.revocations',
  policies: 'aese.control.v1.policies',
  registry: 'aese.control.v1.registry',
  keys: 'aese.control.v1.keys',
} as const;

export type ControlSubject = (typeof CONTROL_SUBJECTS)[keyof typeof CONTROL_SUBJECTS];

/** The JetStream stream of audit events; each publisher instance writes its own hash chain. */
export const AUDIT_STREAM = 'AESE_AUDIT';
export const AUDIT_SUBJECT_PREFIX = 'aese.audit.v1';

/** JetStream stream of notifications the edge delivers; subjects `aese.notifications.v1.<scsAsId>`. */
export const NOTIFICATIONS_STREAM = 'AESE_NOTIFICATIONS';
export const NOTIFICATIONS_SUBJECT_PREFIX = 'aese.notifications.v1';
