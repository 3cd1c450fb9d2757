export { asTokenOf, assertReplayCheck, nonceKey } from './nonce-key.js';
export type { ReplayCheck } from './nonce-key.js';
export { nonceTtlMs, ReplayGuard, STORE_TTL_MARGIN_S, VERDICTS } from './replay-guard.js';
export type { NonceStore, ReplayGuardOptions, Verdict } from './replay-guard.js';
export { DEFAULT_REPLAY_LEASE_MS, REPLAY_LEASES_BUCKET, ReplayLeases } from './replay-leases.js';
export type { ReplayLeasesOptions } from './replay-leases.js';
export { REPLAY_WINDOW_STREAM, REPLAY_WINDOW_SUBJECT_PREFIX, streamConfig, StreamNonceStore } from './stream-nonce-store.js';
export type { StreamNonceStoreOptions } from './stream-nonce-store.js';
