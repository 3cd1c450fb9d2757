import { Metadata } from '@grpc/grpc-js';
import type { CallOptions, ChannelCredentials, Client, ClientUnaryCall, ServiceError } from '@grpc/grpc-js';
import { context, propagation } from '@opentelemetry/api';
import { AeseError, fromServiceError } from '@aese/errors';
import { DEFAULT_CLIENT_DEADLINE_MS, DEFAULT_MAX_MESSAGE_BYTES, meshChannelCredentials } from './mesh-credentials.js';

type Callback<Res> = (error: ServiceError | null, response: Res) => void;
type UnaryFn<Req, Res> = (request: Req, metadata: Metadata, options: Partial<CallOptions>, callback: Callback<Res>) => ClientUnaryCall;

/** Per-call options. */
export interface CallSettings {
  readonly deadlineMs?: number;
  readonly metadata?: Metadata;
  readonly signal?: AbortSignal;
}

/** The unary methods of a generated client, as promise-returning functions. */
export type Promised<C> = {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- matches any unary signature
  [K in keyof C as C[K] extends UnaryFn<any, any> ? K : never]: C[K] extends UnaryFn<infer Req, infer Res> ? (request: Req, settings?: CallSettings) => Promise<Res> : never;
};

export interface MeshClientOptions {
  /** host:port; use a host name that is in the server certificate (never a bare IP). */
  readonly address: string;
  readonly tls: { readonly caPem: string; readonly certPem: string; readonly keyPem: string };
  /** The SPIFFE ID the server must present; any other identity fails the handshake. */
  readonly serverId: string;
  readonly deadlineMs?: number;
  readonly maxMessageBytes?: number;
}

/** A generated client's constructor. */
export type ClientCtor<C extends Client> = new (address: string, credentials: ChannelCredentials, options?: object) => C;

/** Reconnect backoff of unary mesh clients' channels. */
export const MESH_RECONNECT_BACKOFF_MS = { initial: 200, max: 1_000 } as const;

/** A mesh client: promise methods plus the channel, which must be closed. */
export type MeshClient<C extends Client> = Promised<C> & { readonly close: () => void };

/**
 * Creates a client that speaks mTLS with the mesh CA and accepts the server only if its
 * certificate carries exactly the expected SPIFFE ID. Every call gets a deadline, the caller's
 * trace context, and failures come back as {@link AeseError}s with the server's stable code.
 */
export function createMeshClient<C extends Client>(Ctor: ClientCtor<C>, options: MeshClientOptions): MeshClient<C> {
  const credentials = meshChannelCredentials(options);
  const maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const client = new Ctor(options.address, credentials, {
    'grpc.max_receive_message_length': maxBytes,
    'grpc.max_send_message_length': maxBytes,
    // A peer that starts late (crypto, say) is found within a second of listening, not after
    // grpc's default backoff, which grows to minutes.
    'grpc.initial_reconnect_backoff_ms': MESH_RECONNECT_BACKOFF_MS.initial,
    'grpc.max_reconnect_backoff_ms': MESH_RECONNECT_BACKOFF_MS.max,
  });
  const defaultDeadline = options.deadlineMs ?? DEFAULT_CLIENT_DEADLINE_MS;
  const promised: Record<string, unknown> = { close: () => client.close() };
  const proto = Object.getPrototypeOf(client) as Record<string, unknown>;
  for (const name of Object.keys(proto)) {
    const fn = proto[name];
    if (typeof fn !== 'function' || name === 'constructor') continue;
    promised[name] = (request: unknown, settings: CallSettings = {}) => invoke(client, fn as UnaryFn<unknown, unknown>, request, settings, defaultDeadline);
  }
  return promised as MeshClient<C>;
}

function invoke<Req, Res>(client: Client, fn: UnaryFn<Req, Res>, request: Req, settings: CallSettings, defaultDeadline: number): Promise<Res> {
  const metadata = settings.metadata ?? new Metadata();
  propagation.inject(context.active(), metadata, { set: (md, k, v) => md.set(k, v) });
  const deadline = new Date(Date.now() + (settings.deadlineMs ?? defaultDeadline));
  return new Promise<Res>((resolve, reject) => {
    if (settings.signal?.aborted) {
      reject(new AeseError('UNAVAILABLE', 'call aborted before it started'));
      return;
    }
    const call = fn.call(client, request, metadata, { deadline }, (err, res) => {
      settings.signal?.removeEventListener('abort', onAbort);
      if (err) reject(fromServiceError(err));
      else resolve(res);
    });
    const onAbort = (): void => call.cancel();
    settings.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
