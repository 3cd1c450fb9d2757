/**
 * A small body of a T8 schema for a scaffolded test: its required members only, with values the
 * simulated network knows (UE1's identifiers) where a member names a UE. The scaffold checks the
 * result against the official schema and says so when it needs a hand.
 */
import { simulatedUeIdentifiers } from '../../services/capability-exposure/src/network/simulated-core.ts';

type Schema = Record<string, unknown>;

const UE1 = simulatedUeIdentifiers(1);
/** The notification destination of the capability-exposure tests (test/support.ts AS_DESTINATION). */
export const SAMPLE_DESTINATION = 'https://as1.example.com/notify';

/** Values for members whose name says what they are. */
const BY_NAME: Readonly<Record<string, unknown>> = {
  externalId: UE1.externalId,
  msisdn: UE1.msisdn,
  gpsi: `msisdn-${UE1.msisdn}`,
  ueIpv4Addr: UE1.ipv4Addr,
  ipv4Addr: UE1.ipv4Addr,
  ueIpv6Addr: UE1.ipv6Addr,
  ipv6Addr: UE1.ipv6Addr,
  notificationDestination: SAMPLE_DESTINATION,
  mcc: '001',
  mnc: '01',
};
/** One of each set of alternatives a UE can be named by: the first the schema offers wins. */
const UE_PREFERENCE = ['externalId', 'msisdn', 'gpsi', 'ueIpv4Addr', 'ipv4Addr'];

const isSchema = (v: unknown): v is Schema => typeof v === 'object' && v !== null && !Array.isArray(v);

function presenceOnly(s: unknown): boolean {
  return isSchema(s) && Object.keys(s).every(k => k === 'required' || k === 'description');
}

function sampleString(s: Schema): string {
  if (Array.isArray(s['enum'])) return String(s['enum'][0]);
  switch (s['format']) {
    case 'uri':
      return SAMPLE_DESTINATION;
    case 'date-time':
      return new Date(Date.UTC(2030, 0, 1)).toISOString();
    case 'date':
      return '2030-01-01';
    case 'ipv4':
      return UE1.ipv4Addr;
    case 'ipv6':
      return UE1.ipv6Addr;
    case 'byte':
      return 'AQID';
  }
  const pattern = typeof s['pattern'] === 'string' ? s['pattern'] : undefined;
  if (pattern === '^[0-9]{3}$') return '001';
  if (pattern === '^[0-9]{2,3}$') return '01';
  if (pattern?.startsWith('^[A-Fa-f0-9]')) return 'A1B2C3';
  return 'sample';
}

/** A value of the schema, or undefined past the depth limit (circular schemas). */
export function sample(schema: unknown, name = '', depth = 0): unknown {
  if (!isSchema(schema) || depth > 12) return undefined;
  if (name in BY_NAME) return BY_NAME[name];
  if (Array.isArray(schema['allOf'])) {
    const parts = schema['allOf'].map(p => sample(p, name, depth + 1));
    return parts.every(isSchema) ? Object.assign({}, ...parts, objectSample(schema, depth)) : parts.find(p => p !== undefined);
  }
  for (const c of ['oneOf', 'anyOf'] as const) {
    const branches = schema[c];
    if (!Array.isArray(branches) || branches.length === 0) continue;
    if (branches.every(presenceOnly)) {
      // "One of these members": take the one naming the UE the tests know, else the first.
      const options = branches.map(b => (b as { required: string[] }).required);
      const chosen = options.find(o => o.some(m => UE_PREFERENCE.includes(m))) ?? options[0];
      return objectSample(schema, depth, chosen);
    }
    return sample(
      branches.find(b => !presenceOnly(b)),
      name,
      depth + 1,
    );
  }
  switch (schema['type']) {
    case 'object':
      return objectSample(schema, depth);
    case 'array': {
      const item = sample(schema['items'], '', depth + 1);
      return item === undefined ? [] : [item];
    }
    case 'string':
      return sampleString(schema);
    case 'integer':
    case 'number':
      return typeof schema['minimum'] === 'number' ? Math.max(schema['minimum'], 1) : 1;
    case 'boolean':
      return true;
  }
  return isSchema(schema['properties']) ? objectSample(schema, depth) : undefined;
}

function objectSample(schema: Schema, depth: number, extra: readonly string[] = []): Record<string, unknown> {
  const props = isSchema(schema['properties']) ? schema['properties'] : {};
  const required = [...(Array.isArray(schema['required']) ? (schema['required'] as string[]) : []), ...extra];
  // A resource that may name its UE gets one, so it is authorized for that UE.
  if (depth === 0 && !required.some(m => UE_PREFERENCE.includes(m))) {
    const ue = UE_PREFERENCE.find(m => m in props);
    if (ue) required.push(ue);
  }
  const out: Record<string, unknown> = {};
  for (const m of required) {
    const v = sample(props[m], m, depth + 1);
    if (v !== undefined) out[m] = v;
  }
  return out;
}
