import { context, INVALID_SPAN_CONTEXT, propagation, ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import type { Context, Span, SpanOptions, Tracer } from '@opentelemetry/api';

/** Whether a tracer provider is registered in this process (set by startTracing). */
let tracingActive = false;

/** Told by startTracing when spans start (and stop) being recorded. */
export function setTracingActive(active: boolean): void {
  tracingActive = active;
}

/** The span `inSpan` hands over while tracing is off. */
const NON_RECORDING: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** The mesh's tracer: one instrumentation scope for every span the code base makes. */
export function meshTracer(): Tracer {
  return trace.getTracer('aese');
}

/**
 * Runs `fn` in a new active span that ends when `fn` settles; a throw marks the span failed with
 * the error's stable code (never its message: it may name an AS or carry input). With tracing off
 * this is the API's no-op span and one closure.
 */
export function inSpan<T>(name: string, fn: (span: Span) => Promise<T>, options: SpanOptions = {}, parent?: Context): Promise<T> {
  // With no provider registered, no span would record and no context would carry: skip both.
  if (!tracingActive) return fn(NON_RECORDING);
  return meshTracer().startActiveSpan(name, options, parent ?? context.active(), async span => {
    try {
      return await fn(span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * {@link inSpan} for synchronous work: the span ends when `fn` returns or throws. With tracing off
 * it is a plain call (no promise, no closure kept).
 */
export function inSpanSync<T>(name: string, fn: (span: Span) => T, options: SpanOptions = {}): T {
  if (!tracingActive) return fn(NON_RECORDING);
  return meshTracer().startActiveSpan(name, options, context.active(), span => {
    try {
      return fn(span);
    } catch (err) {
      failSpan(span, err);
      throw err;
    } finally {
      span.end();
    }
  });
}

/**
 * {@link inSpan} for work that may be done at once: with tracing off, `fn`'s value (or its
 * promise) as it comes, so a step already done costs no promise; with tracing on, a span around
 * all of it.
 */
export function inSpanSoon<T>(name: string, fn: (span: Span) => T | Promise<T>, options: SpanOptions = {}): T | Promise<T> {
  if (!tracingActive) return fn(NON_RECORDING);
  return inSpan(name, async span => fn(span), options);
}

/** Marks a span failed with an error's stable code (`code` of an AeseError, else its name). */
export function failSpan(span: Span, err: unknown, code?: string): void {
  if (!span.isRecording()) return;
  const stable = code ?? (err as { code?: unknown } | null)?.code;
  span.setStatus({ code: SpanStatusCode.ERROR, message: typeof stable === 'string' ? stable : err instanceof Error ? err.name : 'error' });
}

/** The W3C `traceparent` of the active context ('' when there is none or tracing is off). */
export function activeTraceparent(): string {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  return carrier['traceparent'] ?? '';
}

/** The context a received `traceparent` continues ('' or a malformed one: a new trace). */
export function contextFromTraceparent(traceparent: string): Context {
  if (traceparent === '') return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, { traceparent });
}

/** The trace id of the active span, if there is one (tracing on, or a context carried in). */
export function activeTraceId(): string | undefined {
  const ctx = trace.getSpan(context.active())?.spanContext();
  return ctx && trace.isSpanContextValid(ctx) ? ctx.traceId : undefined;
}
