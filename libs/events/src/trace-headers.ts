import { SpanKind } from '@opentelemetry/api';
import { headers as natsHeaders } from 'nats';
import type { MsgHdrs } from 'nats';
import { activeTraceparent, contextFromTraceparent, inSpan } from '@aese/telemetry';

/** The NATS header carrying a message's W3C trace context. */
export const TRACEPARENT_HEADER = 'traceparent';

/**
 * Publishes in a producer span named for the destination (a stream or a fixed subject, never a
 * per-AS subject) and hands `publish` the headers that carry the span's `traceparent` (undefined
 * with tracing off: no headers at all).
 */
export function publishTraced<T>(destination: string, publish: (headers: MsgHdrs | undefined) => Promise<T>): Promise<T> {
  return inSpan(
    `publish ${destination}`,
    () => {
      const traceparent = activeTraceparent();
      if (traceparent === '') return publish(undefined);
      const h = natsHeaders();
      h.set(TRACEPARENT_HEADER, traceparent);
      return publish(h);
    },
    { kind: SpanKind.PRODUCER, attributes: { 'messaging.system': 'nats', 'messaging.destination.name': destination } },
  );
}

/** Processes a received message in a consumer span that continues its publisher's trace. */
export function consumeTraced<T>(destination: string, headers: MsgHdrs | undefined, process: () => Promise<T>): Promise<T> {
  const traceparent = headers?.get(TRACEPARENT_HEADER) ?? '';
  return inSpan(
    `process ${destination}`,
    process,
    { kind: SpanKind.CONSUMER, attributes: { 'messaging.system': 'nats', 'messaging.destination.name': destination } },
    contextFromTraceparent(traceparent),
  );
}
