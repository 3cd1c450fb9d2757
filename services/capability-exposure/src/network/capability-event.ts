import type { CapabilityEvent, CapabilityEventInput } from './capabilities/events.js';

/** A capability or event type name: short, lowercase, safe in logs and subjects. */
export const CAPABILITY_NAME = /^[a-z0-9][a-z0-9.-]{0,63}$/;
/** Largest payload, as JSON in UTF-8: an event is a report, not a data transfer. */
export const MAX_CAPABILITY_PAYLOAD_BYTES = 16 * 1024;
/** Deepest nesting inside a payload; T8 bodies are a handful of levels deep. */
export const MAX_CAPABILITY_PAYLOAD_DEPTH = 16;

/** Member names that reach object prototypes in JavaScript: never in a payload. */
const FORBIDDEN_MEMBERS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

const isName = (v: unknown): v is string => typeof v === 'string' && CAPABILITY_NAME.test(v);

/** JSON values only (no undefined, NaN, Date, Map, class instance, sparse array or cycle). */
function plainJson(v: unknown, depth: number): boolean {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return true;
  if (typeof v === 'number') return Number.isFinite(v);
  if (typeof v !== 'object' || depth >= MAX_CAPABILITY_PAYLOAD_DEPTH) return false;
  if (Array.isArray(v)) {
    if (Object.getPrototypeOf(v) !== Array.prototype) return false;
    for (let i = 0; i < v.length; i++) if (!(i in v) || !plainJson(v[i], depth + 1)) return false;
    return true;
  }
  return plainObject(v) && Object.entries(v).every(([name, member]) => !FORBIDDEN_MEMBERS.has(name) && plainJson(member, depth + 1));
}

function plainObject(v: object): v is Record<string, unknown> {
  const proto: unknown = Object.getPrototypeOf(v);
  return (proto === Object.prototype || proto === null) && Object.getOwnPropertySymbols(v).length === 0;
}

/** A fresh copy of a plain JSON object payload within the limits, or undefined. */
function payloadOf(v: unknown): Record<string, unknown> | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !plainJson(v, 0)) return undefined;
  const json = JSON.stringify(v);
  if (Buffer.byteLength(json, 'utf8') > MAX_CAPABILITY_PAYLOAD_BYTES) return undefined;
  return JSON.parse(json) as Record<string, unknown>;
}

/**
 * The capability event that untrusted fields describe (id aside), or undefined for anything else:
 * names outside {@link CAPABILITY_NAME}, a payload that is not a plain JSON object within the
 * limits, a time that is not a finite number. The payload is copied: what a listener gets is
 * never the sender's object.
 */
export function readCapabilityEvent(fields: Readonly<Record<string, unknown>>): Omit<CapabilityEvent, 'id'> | undefined {
  const { capability, type, atMs } = fields;
  if (!isName(capability) || !isName(type) || typeof atMs !== 'number' || !Number.isFinite(atMs)) return undefined;
  const payload = payloadOf(fields['payload']);
  return payload ? { kind: 'capability', capability, type, payload, atMs } : undefined;
}

/**
 * The event a module asks to send, at `nowMs` unless it names its time. Throws a TypeError for
 * one no replica would accept, so a sender learns it at once and not from a silent refusal.
 */
export function newCapabilityEvent(input: CapabilityEventInput, nowMs: number): CapabilityEvent {
  const event = readCapabilityEvent({ capability: input.capability, type: input.type, payload: input.payload, atMs: input.atMs ?? nowMs });
  if (!event) {
    throw new TypeError(
      `capability event refused: capability and type must match ${String(CAPABILITY_NAME)}, the payload be a plain JSON object of at most ${MAX_CAPABILITY_PAYLOAD_BYTES} bytes`,
    );
  }
  return event;
}
