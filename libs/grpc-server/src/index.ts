import { Server, ServerCredentials, status as GrpcStatus } from '@grpc/grpc-js';
import type { ServerUnaryCall, sendUnaryData, ServiceDefinition, UntypedServiceImplementation } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';
import type { ServingStatus } from 'grpc-health-check';
import { AeseError, toGrpcStatus } from '@aese/errors';
import type { Logger } from '@aese/logger';
import { peerSpiffeId } from '@aese/pki';
import { PROTO_ROOT } from '@aese/protos';
import type { StreamAnswerBatch, StreamCallBatch } from '@aese/protos';
import type { CallContext, UnaryHandler } from './call-context.js';
import { adaptMultiplexedStream, DEFAULT_MAX_IN_FLIGHT_PER_STREAM } from './multiplexed-stream.js';
import { callerContext, inServerSpan, serverSpanShape } from './server-span.js';
import type { ServerSpanShape } from './server-span.js';
import type { DrainableStream } from './multiplexed-stream.js';

export type { CallContext, UnaryHandler } from './call-context.js';
export { DEFAULT_MAX_IN_FLIGHT_PER_STREAM } from './multiplexed-stream.js';
export { toWireError } from './wire-error.js';
export type { WireError } from './wire-error.js';

/** Deadline applied to calls that arrive without one, so no call holds resources forever. */
export const DEFAULT_CALL_DEADLINE_MS = 10_000;
/** Largest request or response message accepted; bigger ones get RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** How long a graceful shutdown waits for calls in flight before cancelling them. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

type MethodDef = { readonly requestStream: boolean; readonly responseStream: boolean };
type RequestOf<X> = X extends { requestDeserialize: (b: Buffer) => infer Req } ? Req : never;
type ResponseOf<X> = X extends { responseSerialize: (r: infer Res) => Buffer } ? Res : never;

/** The unary methods of a generated service definition. */
export type UnaryMethodsOf<D> = {
  [M in keyof D]: D[M] extends { readonly requestStream: false; readonly responseStream: false } ? M : never;
}[keyof D];

/** The bidi-streaming methods of a generated service definition. */
export type StreamMethodsOf<D> = {
  [M in keyof D]: D[M] extends { readonly requestStream: true; readonly responseStream: true } ? M : never;
}[keyof D];

/** The async handlers of a generated service definition, keyed by unary method. */
export type HandlersOf<D extends ServiceDefinition> = {
  [M in UnaryMethodsOf<D>]: UnaryHandler<RequestOf<D[M]>, ResponseOf<D[M]>>;
};

/** The unary methods a stream method can multiplex: their request and response fit its batches. */
type MultiplexableBy<D, S extends keyof D> = {
  [U in UnaryMethodsOf<D>]: RequestOf<D[S]> extends StreamCallBatch<RequestOf<D[U]>> ? (ResponseOf<D[S]> extends StreamAnswerBatch<ResponseOf<D[U]>> ? U : never) : never;
}[UnaryMethodsOf<D>];

/** One gRPC service mounted on a server: its handlers and, per method, who may call it. */
export interface ServiceMount<D extends ServiceDefinition = ServiceDefinition> {
  readonly definition: D;
  readonly handlers: HandlersOf<D>;
  /** Per unary method, the SPIFFE IDs allowed to call it. A method with no entry cannot be called. */
  readonly allowedCallers: { readonly [M in UnaryMethodsOf<D>]: readonly string[] };
  /**
   * Per bidi-stream method, the unary method it multiplexes: each stream message runs that
   * method's handler, under that method's allow-list. A stream method with no entry refuses to
   * start the server.
   */
  readonly streams?: { readonly [S in StreamMethodsOf<D>]: MultiplexableBy<D, S> };
}

/** Helper that keeps the handler and allow-list types tied to the service definition. */
export function mount<D extends ServiceDefinition>(m: ServiceMount<D>): ServiceMount {
  return m;
}

export interface MeshServerOptions {
  /** Service name, used for health (the empty service name mirrors the overall status) and logs. */
  readonly name: string;
  readonly tls: { readonly caPem: string; readonly certPem: string; readonly keyPem: string };
  readonly services: readonly ServiceMount[];
  /** Proto files (relative to the protos/ root) to serve through reflection. */
  readonly protoFiles: readonly string[];
  /** Fully-qualified gRPC service names, for per-service health status. */
  readonly serviceNames: readonly string[];
  readonly logger: Logger;
  readonly defaultDeadlineMs?: number;
  readonly maxMessageBytes?: number;
  readonly shutdownGraceMs?: number;
  /** Calls in flight on one multiplexed stream before further messages are refused. */
  readonly maxInFlightPerStream?: number;
}

export interface MeshServer {
  /** Binds and starts serving; returns the bound port (pass port 0 for an ephemeral one). */
  listen(host: string, port: number): Promise<number>;
  /** Flips health for the whole server and every mounted service. */
  setServing(serving: boolean): void;
  /** NOT_SERVING, then a graceful shutdown bounded by the grace period. */
  shutdown(): Promise<void>;
  /**
   * Writes a message of the service's own (of the stream's response type, with no answers) on
   * every open stream of a multiplexed stream method whose caller is allowed on it; returns how
   * many streams it went to.
   */
  push(streamMethod: string, message: object): number;
}

/**
 * Builds a gRPC server that only speaks mTLS with the mesh CA, checks every call's caller
 * against the method's allow-list, runs async handlers through one adapter, and serves health
 * and reflection.
 */
export function createMeshServer(options: MeshServerOptions): MeshServer {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const server = new Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.max_concurrent_streams': 1000,
  });
  const defaultDeadlineMs = options.defaultDeadlineMs ?? DEFAULT_CALL_DEADLINE_MS;
  const openStreams = new Set<DrainableStream>();
  let closing = false;
  for (const svc of options.services) {
    const impl: UntypedServiceImplementation = {};
    const handlers = svc.handlers as Record<string, UnaryHandler<unknown, unknown>>;
    const allowedCallers = svc.allowedCallers as Record<string, readonly string[]>;
    const streams = (svc.streams ?? {}) as Record<string, string>;
    for (const [method, def] of Object.entries(svc.definition) as [string, MethodDef & { path: string }][]) {
      if (!def.requestStream && !def.responseStream) {
        const handler = handlers[method];
        if (!handler) throw new TypeError(`no handler for ${def.path}`);
        impl[method] = adaptUnary(def.path, handler, new Set(allowedCallers[method] ?? []), defaultDeadlineMs, options.logger, serverSpanShape(options.name, def.path));
        continue;
      }
      const unary = streams[method];
      const unaryDef = unary === undefined ? undefined : (svc.definition as Record<string, MethodDef & { path: string }>)[unary];
      const handler = unary === undefined ? undefined : handlers[unary];
      if (!def.requestStream || !def.responseStream || !unaryDef || unaryDef.requestStream || unaryDef.responseStream || !handler) {
        throw new TypeError(`${def.path} must name the unary method it multiplexes`);
      }
      impl[method] = adaptMultiplexedStream({
        method,
        path: def.path,
        unaryPath: unaryDef.path,
        span: serverSpanShape(options.name, unaryDef.path, def.path),
        handler,
        allowed: new Set(allowedCallers[unary] ?? []),
        defaultDeadlineMs,
        maxInFlight: options.maxInFlightPerStream ?? DEFAULT_MAX_IN_FLIGHT_PER_STREAM,
        logger: options.logger,
        open: openStreams,
        closing: () => closing,
      });
    }
    server.addService(svc.definition, impl);
  }

  const initial: Record<string, ServingStatus> = { '': 'NOT_SERVING' };
  for (const n of options.serviceNames) initial[n] = 'NOT_SERVING';
  const health = new HealthImplementation(initial);
  health.addToServer(server);

  const packageDefinition = loadSync([...options.protoFiles, HEALTH_PROTO_PATH], {
    includeDirs: [PROTO_ROOT],
    keepCase: true,
  });
  new ReflectionService(packageDefinition).addToServer(server);

  const credentials = ServerCredentials.createSsl(
    Buffer.from(options.tls.caPem),
    [{ private_key: Buffer.from(options.tls.keyPem), cert_chain: Buffer.from(options.tls.certPem) }],
    true,
  );

  const setServing = (serving: boolean): void => {
    const s: ServingStatus = serving ? 'SERVING' : 'NOT_SERVING';
    health.setStatus('', s);
    for (const n of options.serviceNames) health.setStatus(n, s);
  };

  return {
    listen: (host, port) =>
      new Promise((resolve, reject) => {
        server.bindAsync(`${host}:${port}`, credentials, (err, bound) => (err ? reject(err) : resolve(bound)));
      }),
    setServing,
    push: (streamMethod, message) => {
      let sent = 0;
      for (const s of openStreams) if (s.method === streamMethod && s.push(message)) sent += 1;
      return sent;
    },
    shutdown: async () => {
      setServing(false);
      // Long-lived streams would hold a graceful shutdown for its whole grace period: end each
      // once its calls in flight are answered (callers reopen one on another replica).
      closing = true;
      for (const s of [...openStreams]) s.drain();
      await new Promise<void>(resolve => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    },
  };
}

function adaptUnary(path: string, handler: UnaryHandler<unknown, unknown>, allowed: ReadonlySet<string>, defaultDeadlineMs: number, logger: Logger, span: ServerSpanShape) {
  return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void => {
    const peer = call.getAuthContext().sslPeerCertificate;
    // Exactly one SPIFFE ID: a certificate naming several identities is ambiguous and refused.
    const caller = peer ? peerSpiffeId(peer) : undefined;
    if (!caller || !allowed.has(caller)) {
      logger.warn({ method: path, caller: caller ?? null }, 'caller not allowed');
      callback(toGrpcStatus(new AeseError('CALLER_NOT_ALLOWED', `caller is not allowed to call ${path}`)));
      return;
    }
    const deadline = call.getDeadline();
    const deadlineMs = deadline instanceof Date ? deadline.getTime() : Number(deadline);
    const remaining = Number.isFinite(deadlineMs) ? Math.max(0, deadlineMs - Date.now()) : defaultDeadlineMs;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new AeseError('DEADLINE_EXCEEDED', 'deadline exceeded')), remaining);
    call.on('cancelled', () => controller.abort(new AeseError('UNAVAILABLE', 'call cancelled')));
    let done = false;
    const finish = (err: unknown, res?: unknown): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err === undefined) {
        callback(null, res);
        return;
      }
      if (!(err instanceof AeseError) || err.code === 'INTERNAL') logger.error({ err, method: path }, 'call failed');
      callback(toGrpcStatus(err));
    };
    controller.signal.addEventListener('abort', () => finish(controller.signal.reason), { once: true });
    const ctx: CallContext = {
      caller,
      metadata: call.metadata,
      signal: controller.signal,
      peerCertificateDer: peer?.raw,
    };
    inServerSpan(span, caller, callerContext(call.metadata), () => handler(call.request, ctx)).then(
      res => finish(undefined, res),
      (err: unknown) => finish(err),
    );
  };
}

export { GrpcStatus };
