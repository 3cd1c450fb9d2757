/**
 * Mesh gRPC clients: pinned mTLS, deadlines, trace propagation, promise methods and streams. The
 * health client is `@aese/grpc-client/health`: it parses the health proto, which most callers never need.
 */
export { createMeshClient, MESH_RECONNECT_BACKOFF_MS } from './mesh-client.js';
export type { CallSettings, ClientCtor, MeshClient, MeshClientOptions, Promised } from './mesh-client.js';
export { DEFAULT_CLIENT_DEADLINE_MS, DEFAULT_MAX_MESSAGE_BYTES, meshChannelCredentials } from './mesh-credentials.js';
export { createStreamingCaller, DEFAULT_MAX_STREAM_BACKOFF_MS, DEFAULT_MIN_STREAM_BACKOFF_MS, DEFAULT_MAX_IN_FLIGHT_PER_CALLER } from './streaming-caller.js';
export type { StreamingCaller, StreamingCallerOptions, StreamMethodsOf } from './streaming-caller.js';
