import {
  AUDIT_STREAM,
  AUDIT_SUBJECT_PREFIX,
  CONTROL_STREAM,
  CONTROL_SUBJECTS,
  NETWORK_EVENTS_STREAM,
  NETWORK_EVENTS_SUBJECT_PREFIX,
  NOTIFICATION_OUTCOMES_STREAM,
  NOTIFICATION_OUTCOMES_SUBJECT_PREFIX,
  NOTIFICATIONS_STREAM,
  NOTIFICATIONS_SUBJECT_PREFIX,
  TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT,
  TOKEN_REVOCATIONS_STREAM,
  TOKEN_REVOCATIONS_SUBJECT,
} from '@aese/events';
import { KV_BUCKETS } from '@aese/nats';
import { REPLAY_WINDOW_STREAM, REPLAY_WINDOW_SUBJECT_PREFIX } from '@aese/replay-window';
import { MESH_SERVICES, NATS_ADMIN_NAME, OPERATOR_NAME, spiffeId } from '@aese/pki';
import type { MeshService } from '@aese/pki';

/** Who connects to NATS: each mesh service, the operator CLI, and the JetStream administrator. */
export type NatsIdentity = MeshService | typeof OPERATOR_NAME | typeof NATS_ADMIN_NAME;

/** Every {@link NatsIdentity}, in a fixed order (the generated configuration follows it). */
export const NATS_IDENTITIES: readonly NatsIdentity[] = [...MESH_SERVICES, OPERATOR_NAME, NATS_ADMIN_NAME];

/** What one identity may do; everything not listed is refused by the server. */
export interface NatsGrant {
  /** Streams it may read: stream info, message and direct gets, its own consumers on them. */
  readonly read: readonly string[];
  /**
   * Streams it may create when missing (idempotent start-up creation by their owners). Nobody but
   * the administrator may change a stream's settings: retention is part of the trust model.
   */
  readonly create: readonly string[];
  /** Subjects it may publish on (control subjects, KV keys of the buckets it writes). */
  readonly publish: readonly string[];
  /** Full JetStream and core access; the administrator only. */
  readonly admin?: boolean;
}

const kvStream = (bucket: string): string => `KV_${bucket}`;
const kvWrite = (bucket: string): string => `$KV.${bucket}.>`;
const auditOf = (service: MeshService): string => `${AUDIT_SUBJECT_PREFIX}.${service}.>`;

/** Where the deployment's identity is recorded; written once by crypto, read by every service. */
export const DEPLOYMENT_BUCKET = KV_BUCKETS.deployment;

/**
 * The NATS trust model: which identity may read, create and write what. Only crypto writes keys;
 * only authentication writes the registry and publishes revocations; only authorization writes
 * policies; only capability exposure writes subscriptions, publishes network events and requests
 * notifications, which only the edge consumes; only the edge reports their outcomes (which only
 * capability exposure reads) and holds replay leases; replay-guard and the edge append and read
 * nonces; each service appends to its own audit chains; the operator CLI reads the audit trail. No service may delete or purge anything: that takes the administrator.
 */
export const NATS_TRUST_MODEL: Readonly<Record<NatsIdentity, NatsGrant>> = {
  crypto: {
    read: [kvStream(KV_BUCKETS.signingKeys), kvStream(DEPLOYMENT_BUCKET), CONTROL_STREAM],
    create: [kvStream(KV_BUCKETS.signingKeys), kvStream(DEPLOYMENT_BUCKET), CONTROL_STREAM, AUDIT_STREAM],
    publish: [kvWrite(KV_BUCKETS.signingKeys), kvWrite(DEPLOYMENT_BUCKET), CONTROL_SUBJECTS.keys, auditOf('crypto')],
  },
  authentication: {
    read: [kvStream(KV_BUCKETS.applicationServers), kvStream(KV_BUCKETS.certificateIndex), kvStream(DEPLOYMENT_BUCKET), CONTROL_STREAM, TOKEN_REVOCATIONS_STREAM],
    create: [kvStream(KV_BUCKETS.applicationServers), kvStream(KV_BUCKETS.certificateIndex), CONTROL_STREAM, TOKEN_REVOCATIONS_STREAM, AUDIT_STREAM],
    publish: [
      kvWrite(KV_BUCKETS.applicationServers),
      kvWrite(KV_BUCKETS.certificateIndex),
      CONTROL_SUBJECTS.revocations,
      TOKEN_REVOCATIONS_SUBJECT,
      TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT,
      CONTROL_SUBJECTS.registry,
      auditOf('authentication'),
    ],
  },
  authorization: {
    read: [kvStream(KV_BUCKETS.policies), kvStream(DEPLOYMENT_BUCKET)],
    create: [kvStream(KV_BUCKETS.policies), AUDIT_STREAM],
    publish: [kvWrite(KV_BUCKETS.policies), auditOf('authorization')],
  },
  'replay-guard': {
    // It decides replays and audits nothing itself (the edge audits the refusals).
    read: [REPLAY_WINDOW_STREAM, kvStream(DEPLOYMENT_BUCKET)],
    create: [REPLAY_WINDOW_STREAM],
    publish: [`${REPLAY_WINDOW_SUBJECT_PREFIX}.*`],
  },
  'capability-exposure': {
    // The network events and the simulated network's owner lease are its replicas' own business.
    read: [
      kvStream(KV_BUCKETS.subscriptions),
      kvStream(KV_BUCKETS.policies),
      kvStream(DEPLOYMENT_BUCKET),
      NOTIFICATIONS_STREAM,
      NOTIFICATION_OUTCOMES_STREAM,
      NETWORK_EVENTS_STREAM,
      kvStream(KV_BUCKETS.networkOwner),
    ],
    create: [kvStream(KV_BUCKETS.subscriptions), NOTIFICATIONS_STREAM, NOTIFICATION_OUTCOMES_STREAM, NETWORK_EVENTS_STREAM, kvStream(KV_BUCKETS.networkOwner), AUDIT_STREAM],
    publish: [
      kvWrite(KV_BUCKETS.subscriptions),
      `${NOTIFICATIONS_SUBJECT_PREFIX}.>`,
      `${NETWORK_EVENTS_SUBJECT_PREFIX}.>`,
      kvWrite(KV_BUCKETS.networkOwner),
      auditOf('capability-exposure'),
    ],
  },
  edge: {
    // The replay windows of the ASes whose lease it holds are decided in the edge itself.
    read: [kvStream(DEPLOYMENT_BUCKET), CONTROL_STREAM, TOKEN_REVOCATIONS_STREAM, NOTIFICATIONS_STREAM, REPLAY_WINDOW_STREAM, kvStream(KV_BUCKETS.replayLeases)],
    create: [NOTIFICATIONS_STREAM, NOTIFICATION_OUTCOMES_STREAM, AUDIT_STREAM, REPLAY_WINDOW_STREAM, kvStream(KV_BUCKETS.replayLeases)],
    publish: [`${NOTIFICATION_OUTCOMES_SUBJECT_PREFIX}.>`, auditOf('edge'), `${REPLAY_WINDOW_SUBJECT_PREFIX}.*`, kvWrite(KV_BUCKETS.replayLeases)],
  },
  [OPERATOR_NAME]: {
    read: [AUDIT_STREAM, kvStream(DEPLOYMENT_BUCKET)],
    create: [],
    publish: [],
  },
  [NATS_ADMIN_NAME]: { read: [], create: [], publish: [], admin: true },
};

/**
 * Who signs for which place: the control subject or `kv.<bucket>` a signed record names, and the
 * one service that may have crypto sign it (a place matches exactly or as a prefix followed by
 * `.`). Crypto refuses to sign an event for a place its caller does not own, so a service allowed
 * the event-signing key still cannot sign another service's records.
 */
export const SIGNED_PLACE_OWNERS: readonly (readonly [place: string, owner: MeshService])[] = [
  [CONTROL_SUBJECTS.revocations, 'authentication'],
  [CONTROL_SUBJECTS.registry, 'authentication'],
  [TOKEN_REVOCATIONS_SUBJECT, 'authentication'],
  [TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT, 'authentication'],
  [`kv.${KV_BUCKETS.applicationServers}`, 'authentication'],
  [`kv.${KV_BUCKETS.certificateIndex}`, 'authentication'],
  [`kv.${KV_BUCKETS.policies}`, 'authorization'],
  [`kv.${KV_BUCKETS.subscriptions}`, 'capability-exposure'],
  [NOTIFICATIONS_SUBJECT_PREFIX, 'capability-exposure'],
  [NETWORK_EVENTS_SUBJECT_PREFIX, 'capability-exposure'],
  [NOTIFICATION_OUTCOMES_SUBJECT_PREFIX, 'edge'],
  [CONTROL_SUBJECTS.keys, 'crypto'],
];

/** The user name NATS maps a client certificate to: the identity's SPIFFE ID (its URI SAN). */
export function natsUserOf(trustDomain: string, identity: NatsIdentity): string {
  return (MESH_SERVICES as readonly string[]).includes(identity) ? spiffeId(trustDomain, 'svc', identity) : spiffeId(trustDomain, 'operator', identity);
}

/**
 * The inbox prefix of an identity: replies and push-consumer deliveries go to subjects under it,
 * and only that identity may subscribe there, so no one reads another identity's replies.
 */
export function natsInboxPrefix(identity: NatsIdentity): string {
  return `_INBOX_${identity.replace(/[^A-Za-z0-9]/g, '_')}`;
}

/** The NATS publish/subscribe permissions of one identity, as subject lists. */
export function natsPermissions(identity: NatsIdentity): { publish: string[]; subscribe: string[] } {
  const grant = NATS_TRUST_MODEL[identity];
  if (grant.admin) return { publish: ['>'], subscribe: ['>'] };
  const readApi = (s: string): string[] => [
    `$JS.API.STREAM.INFO.${s}`,
    `$JS.API.STREAM.MSG.GET.${s}`,
    `$JS.API.DIRECT.GET.${s}`,
    `$JS.API.DIRECT.GET.${s}.>`,
    `$JS.API.CONSUMER.CREATE.${s}`,
    `$JS.API.CONSUMER.CREATE.${s}.>`,
    `$JS.API.CONSUMER.DURABLE.CREATE.${s}.>`,
    `$JS.API.CONSUMER.INFO.${s}.>`,
    `$JS.API.CONSUMER.DELETE.${s}.>`,
    `$JS.API.CONSUMER.MSG.NEXT.${s}.>`,
    `$JS.ACK.${s}.>`,
    `$JS.FC.${s}.>`,
  ];
  const createApi = (s: string): string[] => [`$JS.API.STREAM.CREATE.${s}`, `$JS.API.STREAM.INFO.${s}`];
  const publish = new Set<string>(['$JS.API.INFO', '$JS.API.STREAM.NAMES']);
  for (const s of grant.read) for (const p of readApi(s)) publish.add(p);
  for (const s of grant.create) for (const p of createApi(s)) publish.add(p);
  for (const p of grant.publish) publish.add(p);
  return { publish: [...publish], subscribe: [`${natsInboxPrefix(identity)}.>`] };
}
