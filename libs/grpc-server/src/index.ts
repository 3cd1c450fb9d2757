import { Server, ServerCredentials, status as GrpcStatus } from '@grpc/grpc-js';
import type {
  Metadata,
  ServerUnaryCall,
  sendUnaryData,
  ServiceDefinition,
  UntypedServiceImplementation,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { ReflectionService } from '@grpc/reflection';
import { HealthImplementation, protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';
import type { ServingStatus } from 'grpc-health-check';
import { AeseError, toGrpcStatus } from '@aese/errors';
import type { Logger } from '@aese/logger';
import { spiffeIdsOfPeer } from '@aese/pki';
import { PROTO_ROOT } from '@aese/protos';

/** Deadline applied to calls that arrive without one, so no call holds resources forever. */
export const DEFAULT_CALL_DEADLINE_MS = 10_000;
/** Largest request or response message accepted; bigger ones get RESOURCE_EXHAUSTED. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;
/** How long a graceful shutdown waits for calls in flight before cancelling them. */
export const DEFAULT_SHUTDOWN_GRACE_MS = 5_000;

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

/** An RPC implementation: async, no callbacks, throws {@link AeseError}s for expected failures. */
export type UnaryHandler<Req, Res> = (request: Req, ctx: CallContext) => Promise<Res>;

/** The async handlers of a generated service definition, keyed by method. */
export type HandlersOf<D extends ServiceDefinition> = {
  [M in keyof D]: D[M] extends { requestDeserialize: (b: Buffer) => infer Req; responseSerialize: (r: infer Res) => Buffer }
    ? UnaryHandler<Req, Res>
    : never;
};

/** One gRPC service mounted on a server: its handlers and, per method, who may call it. */
export interface ServiceMount<D extends ServiceDefinition = ServiceDefinition> {
  readonly definition: D;
  readonly handlers: HandlersOf<D>;
  /** Per method, the SPIFFE IDs allowed to call it. A method with no entry cannot be called. */
  readonly allowedCallers: { readonly [M in keyof D]: readonly string[] };
}

/** Helper that keeps the handler and allow-list types tied to the service definition. */
export function mount<D extends ServiceDefinition>(m: ServiceMount<D>): ServiceMount {
  return m as unknown as ServiceMount;
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
}

export interface MeshServer {
  /** Binds and starts serving; returns the bound port (pass port 0 for an ephemeral one). */
  listen(host: string, port: number): Promise<number>;
  /** Flips health for the whole server and every mounted service. */
  setServing(serving: boolean): void;
  /** NOT_SERVING, then a graceful shutdown bounded by the grace period. */
  shutdown(): Promise<void>;
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
  for (const svc of options.services) {
    const impl: UntypedServiceImplementation = {};
    for (const [method, def] of Object.entries(svc.definition)) {
      const handler = (svc.handlers as Record<string, UnaryHandler<unknown, unknown>>)[method];
      if (!handler) throw new TypeError(`no handler for ${def.path}`);
      const allowed = (svc.allowedCallers as Record<string, readonly string[]>)[method] ?? [];
      impl[method] = adaptUnary(def.path, handler, new Set(allowed), defaultDeadlineMs, options.logger);
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
    shutdown: async () => {
      setServing(false);
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

function adaptUnary(
  path: string,
  handler: UnaryHandler<unknown, unknown>,
  allowed: ReadonlySet<string>,
  defaultDeadlineMs: number,
  logger: Logger,
) {
  return (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>): void => {
    const peer = call.getAuthContext().sslPeerCertificate;
    const ids = peer ? spiffeIdsOfPeer(peer) : [];
    // Exactly one SPIFFE ID: a certificate naming several identities is ambiguous and refused.
    const caller = ids.length === 1 ? ids[0]! : undefined;
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
    handler(call.request, ctx).then(
      res => finish(undefined, res),
      (err: unknown) => finish(err),
    );
  };
}

export { GrpcStatus };
