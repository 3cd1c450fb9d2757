export { DEPLOYMENT_BUCKET, NATS_IDENTITIES, NATS_TRUST_MODEL, SIGNED_PLACE_OWNERS, natsInboxPrefix, natsPermissions, natsUserOf } from './trust-model.js';
export type { NatsGrant, NatsIdentity } from './trust-model.js';
export { renderNatsServerConfig } from './server-config.js';
export type { NatsServerConfigOptions, NatsTlsFiles } from './server-config.js';
