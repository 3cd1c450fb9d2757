import type { Metadata } from '@grpc/grpc-js';

/** What a handler knows about the call beyond its request. */
export interface CallContext {
  /** The caller's SPIFFE ID, taken from the verified peer certificate. */
  readonly caller: string;
  readonly metadata: Metadata;
  /** Aborted when the call's deadline (or the default one) passes or the caller cancels. */
  readonly signal: AbortSignal;
  /** The verified peer certificate (DER) of the mesh caller. */
  readonly peerCertificateDer: Buffer | undefined;
}

/** An RPC implementation: async, no callbacks, throws AeseErrors for expected failures. */
export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;
