import type { NetworkEvent, Plmn, QosEvent, UeLocation, UeView } from './network-adapter.js';
import { QOS_EVENTS } from './network-adapter.js';
import type { QosSessionChange } from './simulated-core.js';
import { readCapabilityEvent } from './capability-event.js';
import { parseStrictJson } from '../domain/strict-json.js';

/**
 * What travels between replicas: a network event or a session change, and the replica it comes
 * from. UEs travel by external identifier only; each replica resolves them in its own copy of the
 * network (the permanent identity and the local handle never leave a replica). A capability
 * event travels as it is: its payload names UEs by T8 identifier, for its module to resolve.
 */
export type NetworkRecord = { readonly origin: string; readonly event: NetworkEvent } | { readonly origin: string; readonly session: QosSessionChange };

/** Finds a UE of this replica's network by its external identifier. */
export type UeLookup = (externalId: string) => Promise<UeView | undefined>;

/** The bytes of a record (JSON). */
export function encodeNetworkRecord(record: NetworkRecord): Uint8Array {
  const ueRef = (ue: UeView): { externalId: string } => ({ externalId: ue.externalId });
  let wire: unknown;
  if ('event' in record) {
    const e = record.event;
    wire = { origin: record.origin, event: e.kind === 'qos' || e.kind === 'capability' ? e : { ...e, ue: ueRef(e.ue) } };
  } else {
    const c = record.session;
    wire = { origin: record.origin, session: c.op === 'delete' ? c : { ...c, ue: ueRef(c.ue) } };
  }
  return Buffer.from(JSON.stringify(wire), 'utf8');
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 256;
const num = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const plmn = (v: unknown): v is Plmn => isObject(v) && str(v['mcc']) && str(v['mnc']);
const location = (v: unknown): v is UeLocation =>
  isObject(v) &&
  plmn(v['plmn']) &&
  (v['rat'] === 'EUTRA' || v['rat'] === 'NR') &&
  str(v['tac']) &&
  str(v['cellId']) &&
  num(v['latitude']) &&
  num(v['longitude']) &&
  num(v['observedAtMs']);

/**
 * Reads a record; undefined for anything malformed or naming a UE this network does not know
 * (a signed record from a replica with another network configuration is not acted on). The JSON
 * is read strictly (no repeated or prototype-reaching member names, bounded nesting).
 */
export async function decodeNetworkRecord(bytes: Uint8Array, findUe: UeLookup): Promise<NetworkRecord | undefined> {
  let wire: unknown;
  try {
    wire = parseStrictJson(bytes);
  } catch {
    return undefined;
  }
  if (!isObject(wire) || !str(wire['origin'])) return undefined;
  const origin = wire['origin'];
  const ueOf = async (v: unknown): Promise<UeView | undefined> => (isObject(v) && str(v['externalId']) ? findUe(v['externalId']) : undefined);
  if (isObject(wire['event'])) {
    const e = wire['event'];
    if (!num(e['atMs']) || (e['id'] !== undefined && !str(e['id']))) return undefined;
    const base = { atMs: e['atMs'], ...(e['id'] !== undefined ? { id: e['id'] } : {}) };
    if (e['kind'] === 'qos') {
      if (!str(e['sessionId']) || !QOS_EVENTS.includes(e['event'] as QosEvent)) return undefined;
      if (e['appliedQosRef'] !== undefined && !str(e['appliedQosRef'])) return undefined;
      const appliedQosRef = e['appliedQosRef'];
      return { origin, event: { ...base, kind: 'qos', sessionId: e['sessionId'], event: e['event'] as QosEvent, appliedQosRef } };
    }
    if (e['kind'] === 'capability') {
      const event = readCapabilityEvent(e);
      return event ? { origin, event: { ...base, ...event } } : undefined;
    }
    const ue = await ueOf(e['ue']);
    if (!ue) return undefined;
    if (e['kind'] === 'location' && location(e['location'])) return { origin, event: { ...base, kind: 'location', ue, location: e['location'] } };
    if (e['kind'] === 'reachability' && typeof e['reachable'] === 'boolean') return { origin, event: { ...base, kind: 'reachability', ue, reachable: e['reachable'] } };
    const r = e['roaming'];
    if (e['kind'] === 'roaming' && isObject(r) && typeof r['roaming'] === 'boolean' && plmn(r['servingPlmn']) && num(r['changedAtMs'])) {
      return { origin, event: { ...base, kind: 'roaming', ue, roaming: { roaming: r['roaming'], servingPlmn: r['servingPlmn'], changedAtMs: r['changedAtMs'] } } };
    }
    return undefined;
  }
  if (isObject(wire['session'])) {
    const c = wire['session'];
    if (!str(c['id'])) return undefined;
    if (c['op'] === 'delete') return { origin, session: { op: 'delete', id: c['id'] } };
    const candidates = c['candidates'];
    if (c['op'] !== 'upsert' || !Array.isArray(candidates) || candidates.length > 16 || !candidates.every(str)) return undefined;
    const ue = await ueOf(c['ue']);
    return ue ? { origin, session: { op: 'upsert', id: c['id'], ue, candidates } } : undefined;
  }
  return undefined;
}
