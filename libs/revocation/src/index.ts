export { RevocationList } from './revocation-list.js';
export type { Revocation } from './revocation-list.js';
export {
  DEFAULT_TOKEN_REVOCATION_RETENTION_S,
  REVOCATION_EVENT_TYPE,
  REVOCATION_SNAPSHOT_TYPE,
  TOKEN_REVOCATION_LEEWAY_S,
  decodeRevocation,
  encodeRevocation,
  revocationSubject,
} from './revocation-events.js';
export { followRevocations, MAX_SNAPSHOT_TOKENS, TOKEN_SNAPSHOT_EVERY } from './revocation-feed.js';
export type { RevocationFeedOptions } from './revocation-feed.js';
