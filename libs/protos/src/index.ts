import { fileURLToPath } from 'node:url';

/** Directory holding the .proto sources; proto-loader reads them for server reflection. */
export const PROTO_ROOT = fileURLToPath(new URL('../../../protos', import.meta.url));

/** The .proto file of each service, relative to {@link PROTO_ROOT}. */
export const PROTO_FILES = {
  crypto: 'aese/crypto/v1/crypto.proto',
  authentication: 'aese/authentication/v1/authentication.proto',
  authorization: 'aese/authorization/v1/authorization.proto',
  replayGuard: 'aese/replay_guard/v1/replay_guard.proto',
  capabilityExposure: 'aese/capability_exposure/v1/capability_exposure.proto',
  events: 'aese/events/v1/events.proto',
} as const;

export { approxMessageBytes, STREAM_BATCH_MAX_BYTES, STREAM_BATCH_MAX_ITEMS, STREAM_ITEM_ENVELOPE_BYTES, TurnBatcher } from './stream-batch.js';
export type { StreamAnswer, StreamAnswerBatch, StreamCall, StreamCallBatch } from './stream-batch.js';
