import { parseSpiffeId } from '@aese/pki';

/**
 * What a caller may sign, beyond which key purpose it may use: a signature binds the place it is
 * for (a control subject, a KV bucket, an audit chain), so it must also bind who may write there.
 * Without this, any service allowed an event-signing key could sign another service's records.
 */
export type ContentRule = (caller: string, data: Uint8Array) => boolean;

const EVENT_HEADER = 'aese-control-event/v1\n';

/** The place an event-signing input names: the line after the header (`libs/events` signedBytes). */
function placeOf(data: Uint8Array): string | undefined {
  const head = Buffer.from(data.subarray(0, 512)).toString('utf8');
  if (!head.startsWith(EVENT_HEADER)) return undefined;
  const end = head.indexOf('\n', EVENT_HEADER.length);
  return end === -1 ? undefined : head.slice(EVENT_HEADER.length, end);
}

function serviceOf(caller: string): string | undefined {
  const id = parseSpiffeId(caller);
  return id?.kind === 'svc' ? id.name : undefined;
}

/**
 * Event-signing inputs must name a place the caller owns: `owners` maps a place (exact, or as a
 * prefix followed by `.`) to the one service that writes there.
 */
export function eventPlaceRule(owners: readonly (readonly [place: string, service: string])[]): ContentRule {
  return (caller, data) => {
    const place = placeOf(data);
    const service = serviceOf(caller);
    if (place === undefined || service === undefined) return false;
    const owner = owners.find(([p]) => place === p || place.startsWith(`${p}.`));
    return owner !== undefined && owner[1] === service;
  };
}

const CHECKPOINT_TAG = 'aese.audit.checkpoint.v1';

/** Audit checkpoints may only be signed for the caller's own chains. */
export const auditCheckpointRule: ContentRule = (caller, data) => {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(data).toString('utf8'));
  } catch {
    return false;
  }
  return Array.isArray(parsed) && parsed[0] === CHECKPOINT_TAG && parsed[1] === serviceOf(caller);
};
