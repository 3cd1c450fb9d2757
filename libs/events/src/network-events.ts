import type { NatsConnection } from 'nats';
import { openBound, signBound } from './notifications.js';
import type { EventSigner, EventVerifier } from './signing.js';
import { ensureStream } from './streams.js';
import { NETWORK_EVENTS_STREAM, NETWORK_EVENTS_SUBJECT_PREFIX } from './subjects.js';

/** Type name in the signed envelope of a network event or a session change. */
export const NETWORK_EVENT_TYPE = 'aese.events.v1.NetworkEvent';
/**
 * How long network events are kept: an event nobody handled within it is too old to report, and a
 * replica starting later replays this much of the network's history to catch up.
 */
export const NETWORK_EVENTS_MAX_AGE_MS = 3600 * 1000;
/** Window in which a republished event id is dropped by JetStream. */
export const NETWORK_EVENTS_DUPLICATE_WINDOW_MS = 2 * 60 * 1000;

const nanos = (ms: number): number => ms * 1_000_000;

/** The subject of one kind of network record (`event.<kind>` for events, `session` for session changes). */
export function networkEventSubject(kind: string): string {
  if (!/^[a-z]+(\.[a-z]+)?$/.test(kind)) throw new TypeError('a network event kind is lowercase letters');
  return `${NETWORK_EVENTS_SUBJECT_PREFIX}.${kind}`;
}

/** Creates the network-event stream if nobody has. */
export async function ensureNetworkEventStream(nc: NatsConnection): Promise<void> {
  await ensureStream(nc, {
    name: NETWORK_EVENTS_STREAM,
    subjects: [`${NETWORK_EVENTS_SUBJECT_PREFIX}.>`],
    max_age: nanos(NETWORK_EVENTS_MAX_AGE_MS),
    duplicate_window: nanos(NETWORK_EVENTS_DUPLICATE_WINDOW_MS),
  });
}

/**
 * Signs a network record (through crypto, which signs this place for capability exposure only)
 * bound to its subject and its time: a replica acts on nothing another identity wrote.
 */
export function signNetworkEvent(signer: EventSigner, subject: string, payload: Uint8Array, atMs: number): Promise<Uint8Array> {
  return signBound(signer, subject, NETWORK_EVENT_TYPE, payload, atMs);
}

/** Why a network record was refused. */
export type NetworkEventRefusal = 'MALFORMED' | 'BAD_SIGNATURE' | 'WRONG_SUBJECT' | 'EXPIRED';

/**
 * Opens a signed network record received on `subject`: signed with an event-signing key for this
 * subject, under the network-event prefix, and younger than the stream's retention. Throws the
 * verifier's UNAVAILABLE when keys cannot be fetched (retry later, not a forgery).
 */
export async function openNetworkEvent(
  verifier: EventVerifier,
  subject: string,
  data: Uint8Array,
  nowMs: number,
): Promise<{ ok: true; payload: Uint8Array; atMs: number } | { ok: false; reason: NetworkEventRefusal }> {
  if (!subject.startsWith(`${NETWORK_EVENTS_SUBJECT_PREFIX}.`)) return { ok: false, reason: 'WRONG_SUBJECT' };
  const opened = await openBound(verifier, subject, NETWORK_EVENT_TYPE, data);
  if (!opened.ok) return opened;
  if (opened.event.version + NETWORK_EVENTS_MAX_AGE_MS < nowMs) return { ok: false, reason: 'EXPIRED' };
  return { ok: true, payload: opened.event.payload, atMs: opened.event.version };
}
