import { propagation, ROOT_CONTEXT, SpanKind } from '@opentelemetry/api';
import type { Context, SpanOptions, TextMapGetter } from '@opentelemetry/api';
import type { Metadata } from '@grpc/grpc-js';
import { inSpan } from '@aese/telemetry';

const metadataGetter: TextMapGetter<Metadata> = {
  keys: md => Object.keys(md.getMap()),
  get: (md, key) => {
    const values = md.get(key);
    return values.length === 0 ? undefined : values.map(String);
  },
};

/** The trace context a unary call's metadata carries (the root context when none). */
export function callerContext(metadata: Metadata): Context {
  return propagation.extract(ROOT_CONTEXT, metadata, metadataGetter);
}

/** A method's server span: its name and fixed attributes, built once per method, not per call. */
export interface ServerSpanShape {
  readonly name: string;
  readonly options: SpanOptions;
}

/** The server span of a unary method, served by itself or multiplexed on `streamPath`. */
export function serverSpanShape(server: string, unaryPath: string, streamPath?: string): ServerSpanShape {
  // Named for the unary method: a streamed call is the same operation.
  const name = unaryPath.startsWith('/') ? unaryPath.slice(1) : unaryPath;
  const slash = name.lastIndexOf('/');
  return {
    name,
    options: {
      kind: SpanKind.SERVER,
      attributes: {
        'rpc.system': 'grpc',
        'rpc.service': name.slice(0, slash),
        'rpc.method': name.slice(slash + 1),
        'aese.service': server,
        ...(streamPath ? { 'aese.stream': streamPath.replace(/^\//, '') } : {}),
      },
    },
  };
}

/**
 * Runs one call's handler in its server span, a child of the caller's span, so the calls the
 * handler makes join the caller's trace.
 */
export function inServerSpan<T>(shape: ServerSpanShape, caller: string, parent: Context, fn: () => Promise<T>): Promise<T> {
  return inSpan(
    shape.name,
    span => {
      if (span.isRecording()) span.setAttribute('aese.caller', caller);
      return fn();
    },
    shape.options,
    parent,
  );
}
