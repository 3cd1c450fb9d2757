export { RevocationList } from './revocation-list.js';
export type { Revocation } from './revocation-list.js';
export { REVOCATION_EVENT_TYPE, decodeRevocation, encodeRevocation } from './revocation-events.js';
export { followRevocations } from './revocation-feed.js';
export type { RevocationFeedOptions } from './revocation-feed.js';
