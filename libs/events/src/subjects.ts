/** The JetStream stream that carries signed control events (revocations, policies, registry, keys). */
export const CONTROL_STREAM = 'AESE_CONTROL';

/** One subject per kind of control event; each subject has its own version sequence. */
export const CONTROL_SUBJECTS = {
  revocations: 'aese.control.v1.revocations',
  policies: 'aese.control.v1.policies',
  registry: 'aese.control.v1.registry',
  keys: 'aese.control.v1.keys',
} as const;

/**
 * Token revocations live in a stream of their own whose retention (max age) outlasts the longest
 * token: they leave with the tokens they revoke, so AS traffic cannot grow the permanent stream.
 */
export const TOKEN_REVOCATIONS_STREAM = 'AESE_TOKEN_REVOCATIONS';
export const TOKEN_REVOCATIONS_SUBJECT = 'aese.token-revocations.v1.revoked';
/** Signed snapshots of the token revocations in force, in the same stream: start-up reads the last one and the tail. */
export const TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT = 'aese.token-revocations.v1.snapshot';

/** Every subject that carries signed control events, in either control stream. */
export type ControlSubject = (typeof CONTROL_SUBJECTS)[keyof typeof CONTROL_SUBJECTS] | typeof TOKEN_REVOCATIONS_SUBJECT | typeof TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT;

/** The stream a control subject is stored in, and the wildcard that covers the whole stream. */
export function controlStreamOf(subject: ControlSubject): { stream: string; filter: string } {
  return subject === TOKEN_REVOCATIONS_SUBJECT || subject === TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT
    ? { stream: TOKEN_REVOCATIONS_STREAM, filter: 'aese.token-revocations.v1.>' }
    : { stream: CONTROL_STREAM, filter: 'aese.control.v1.>' };
}

/** The JetStream stream of audit events; each publisher instance writes its own hash chain. */
export const AUDIT_STREAM = 'AESE_AUDIT';
export const AUDIT_SUBJECT_PREFIX = 'aese.audit.v1';

/** JetStream stream of notifications the edge delivers; subjects `aese.notifications.v1.<scsAsId>`. */
export const NOTIFICATIONS_STREAM = 'AESE_NOTIFICATIONS';
export const NOTIFICATIONS_SUBJECT_PREFIX = 'aese.notifications.v1';

/**
 * JetStream stream of what became of each notification, reported by the edge to capability
 * exposure (which counts a report once delivered); subjects `aese.notification-outcomes.v1.<scsAsId>`.
 */
export const NOTIFICATION_OUTCOMES_STREAM = 'AESE_NOTIFICATION_OUTCOMES';
export const NOTIFICATION_OUTCOMES_SUBJECT_PREFIX = 'aese.notification-outcomes.v1';

/**
 * JetStream stream of signed network events (UE moves, reachability, roaming, QoS) and of the
 * simulated network's session changes: every capability-exposure replica mirrors the network from
 * it, and one shared durable consumer hands each event to exactly one replica to notify.
 */
export const NETWORK_EVENTS_STREAM = 'AESE_NETWORK_EVENTS';
export const NETWORK_EVENTS_SUBJECT_PREFIX = 'aese.network-events.v1';
