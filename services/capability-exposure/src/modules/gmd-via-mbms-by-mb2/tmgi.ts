import { TMGI_PATTERN } from '../mbms/bm-sc.js';

const UUID_HEAD = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-$/;

/**
 * The `{tmgi}` of a TMGI allocation resource: a random UUID whose last group (its 48-bit node
 * field) is the TMGI, so the segment is at once the allocated TMGI (its last 12 hex digits, see
 * tmgiString) and an unguessable resource id of the shape every T8 resource id here has.
 */
export function allocationId(randomUuid: string, tmgi: string): string {
  const head = randomUuid.slice(0, 24);
  if (!UUID_HEAD.test(head) || !TMGI_PATTERN.test(tmgi)) throw new TypeError('allocationId needs a lowercase UUID and a TMGI');
  return `${head}${tmgi}`;
}

/** The TMGI an allocation id carries. */
export function tmgiOfAllocation(id: string): string {
  return id.slice(-12);
}
