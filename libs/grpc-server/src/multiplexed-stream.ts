import type { ServerDuplexStream } from '@grpc/grpc-js';
import { AeseError } from '@aese/errors';
import type { Logger } from '@aese/logger';
import { peerSpiffeId } from '@aese/pki';
import type { CallContext, UnaryHandler } from './call-context.js';
import { toWireError } from './wire-error.js';
import { inServerSpan } from './server-span.js';
import type { ServerSpanShape } from './server-span.js';
import { contextFromTraceparent } from '@aese/telemetry';
import { approxMessageBytes, TurnBatcher } from '@aese/protos';
import type { StreamAnswer, StreamAnswerBatch, StreamCallBatch } from '@aese/protos';

/**
 * Calls in flight on one stream before further messages are refused with RESOURCE_EXHAUSTED:
 * one caller cannot queue unbounded work on a server through a single stream.
 */
export const DEFAULT_MAX_IN_FLIGHT_PER_STREAM = 1024;
/** Longest delay setTimeout takes (a larger one fires at once); a caller's longer deadline is cut to it. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * An open stream as the server sees it: it can be asked to wind down (shutdown: no new calls, end
 * after the last answer) and be sent a message of the service's own beside the answers.
 */
export interface DrainableStream {
  /** The stream method's name in the service definition (e.g. `invokeStream`). */
  readonly method: string;
  drain(): void;
  /**
   * Writes a message of the stream's response type at once, ahead of answers still batching;
   * false (nothing written) on a closed stream or one whose caller is not allowed.
   */
  push(message: object): boolean;
}

export interface MultiplexedStreamOptions {
  /** The stream method's name in the service definition, for {@link DrainableStream.push}. */
  readonly method: string;
  /** The stream method's path, for logs. */
  readonly path: string;
  /** The path of the unary method whose handler and allow-list the stream reuses. */
  readonly unaryPath: string;
  /** The server span each call runs in. */
  readonly span: ServerSpanShape;
  readonly handler: UnaryHandler<unknown, unknown>;
  readonly allowed: ReadonlySet<string>;
  readonly defaultDeadlineMs: number;
  readonly maxInFlight: number;
  readonly logger: Logger;
  /** The server's open streams, so a shutdown can drain them instead of waiting them out. */
  readonly open: Set<DrainableStream>;
  /** True once the server is shutting down: a stream opened then is drained at once. */
  readonly closing: () => boolean;
}

/**
 * Serves a bidi stream whose inbound messages are batches of calls of a unary handler: the same
 * handler, the same allow-list (checked once per stream on the peer certificate's SPIFFE ID;
 * a caller not allowed gets every message refused with CALLER_NOT_ALLOWED), a deadline per
 * call, errors carried as stable codes in the answer. A failing call never ends the stream.
 * Answers ready in one turn of the event loop leave in one message.
 * Saves the caller the per-call HTTP/2 stream, headers and trailers of a unary call, which is
 * most of a unary call's CPU cost on both sides.
 */
export function adaptMultiplexedStream(options: MultiplexedStreamOptions) {
  const { handler, allowed, defaultDeadlineMs, maxInFlight, logger, open, path, unaryPath, span } = options;
  return (call: ServerDuplexStream<StreamCallBatch<unknown>, StreamAnswerBatch<unknown>>): void => {
    const peer = call.getAuthContext().sslPeerCertificate;
    // Exactly one SPIFFE ID: a certificate naming several identities is ambiguous and refused.
    const caller = peer ? peerSpiffeId(peer) : undefined;
    const permitted = caller !== undefined && allowed.has(caller);
    if (!permitted) logger.warn({ method: path, caller: caller ?? null }, 'caller not allowed');
    /** Ends a call in flight from outside (its deadline, the stream gone). */
    const cancels = new Set<(reason: AeseError) => void>();
    /** Calls not answered yet (the stream ends once there are none). */
    let inFlight = 0;
    /** Handlers still running, answered or not (a call past its deadline may still be working): the bound counts these. */
    let running = 0;
    let closed = false;
    let draining = false;
    let inputEnded = false;

    const stream: DrainableStream = {
      method: options.method,
      drain: () => {
        draining = true;
        maybeEnd();
      },
      push: message => {
        // A caller not allowed on the method hears nothing of the service's own either.
        if (closed || !permitted) return false;
        call.write(message as StreamAnswerBatch<unknown>);
        return true;
      },
    };
    const outbox = new TurnBatcher<StreamAnswer<unknown>>(answers => call.write({ answers }));
    const maybeEnd = (): void => {
      if (closed || inFlight > 0 || !(inputEnded || draining)) return;
      closed = true;
      open.delete(stream);
      outbox.flush();
      call.end();
    };
    const abandon = (): void => {
      if (closed) return;
      closed = true;
      open.delete(stream);
      outbox.discard();
      for (const cancel of [...cancels]) cancel(new AeseError('UNAVAILABLE', 'stream closed'));
    };
    const send = (id: number, response: unknown, err?: unknown): void => {
      if (closed) return;
      if (err === undefined) {
        outbox.push({ id, response, errorCode: '', errorMessage: '' }, approxMessageBytes(response));
        return;
      }
      const wire = toWireError(err);
      outbox.push({ id, response: undefined, errorCode: wire.code, errorMessage: wire.message }, approxMessageBytes(wire.message));
    };
    const ctxBase = { caller: caller ?? '', metadata: call.metadata, peerCertificateDer: peer?.raw };

    const run = (id: number, request: unknown, timeoutMs: number, traceparent: string): void => {
      inFlight += 1;
      running += 1;
      // An AbortController costs more than many a handler: made only if the handler reads its signal.
      let controller: AbortController | undefined;
      let abortedWith: AeseError | undefined;
      let done = false;
      const finish = (err: unknown, res?: unknown): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        cancels.delete(cancel);
        inFlight -= 1;
        if (err !== undefined && (!(err instanceof AeseError) || err.code === 'INTERNAL')) logger.error({ err, method: path }, 'call failed');
        send(id, res, err);
        maybeEnd();
      };
      const cancel = (reason: AeseError): void => {
        if (done) return;
        abortedWith = reason;
        finish(reason);
        controller?.abort(reason);
      };
      cancels.add(cancel);
      const timer = setTimeout(() => cancel(new AeseError('DEADLINE_EXCEEDED', 'deadline exceeded')), timeoutMs > 0 ? Math.min(timeoutMs, MAX_TIMER_MS) : defaultDeadlineMs);
      const ctx: CallContext = {
        ...ctxBase,
        get signal(): AbortSignal {
          if (!controller) {
            controller = new AbortController();
            if (abortedWith) controller.abort(abortedWith);
          }
          return controller.signal;
        },
      };
      let pending: Promise<unknown>;
      try {
        pending = inServerSpan(span, ctxBase.caller, contextFromTraceparent(traceparent), () => handler(request, ctx));
      } catch (err: unknown) {
        running -= 1;
        finish(err);
        return;
      }
      pending.then(
        res => {
          running -= 1;
          finish(undefined, res);
        },
        (err: unknown) => {
          running -= 1;
          finish(err);
        },
      );
    };

    if (options.closing()) draining = true;
    open.add(stream);
    call.on('data', (msg: StreamCallBatch<unknown>) => {
      for (const c of msg.calls) {
        if (closed) return;
        const id = c.id;
        if (!permitted) send(id, undefined, new AeseError('CALLER_NOT_ALLOWED', `caller is not allowed to call ${unaryPath}`));
        else if (draining) send(id, undefined, new AeseError('UNAVAILABLE', 'the server is shutting down'));
        else if (c.request === undefined) send(id, undefined, new AeseError('INVALID_INPUT', 'stream call without a request'));
        else if (running >= maxInFlight) send(id, undefined, new AeseError('RESOURCE_EXHAUSTED', `more than ${maxInFlight} calls in flight on one stream`));
        else run(id, c.request, c.timeoutMs, c.traceparent);
      }
    });
    call.on('end', () => {
      inputEnded = true;
      maybeEnd();
    });
    call.on('cancelled', abandon);
    call.on('error', abandon);
  };
}
