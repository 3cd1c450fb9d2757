/**
 * The OpenTelemetry trace SDK, set up once per service process. Apart from the package's index
 * (spans, settings, metric instruments: the API only) so that what merely propagates trace
 * context, the CLI among them, does not load the SDK.
 */
import { readFileSync } from 'node:fs';
import { context, propagation, trace } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, SimpleSpanProcessor, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-node';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { setTracingActive } from './spans.js';
import { otlpTracesUrl } from './tracing.js';
import type { Tracing, TracingOptions } from './tracing.js';

let registered = false;

const DISABLED: Tracing = { enabled: false, flush: async () => undefined, shutdown: async () => undefined };

/**
 * Sets up the OpenTelemetry trace SDK for one service process, once: `service.name` on every
 * span, W3C Trace Context propagation, an AsyncLocalStorage context manager, parent-based
 * sampling at the configured ratio, and OTLP/HTTP export when an endpoint is configured. With
 * no endpoint and no exporter nothing is registered: the API stays a no-op and the hot path
 * pays for nothing. Calling it again while a provider is registered is a programmer mistake.
 */
export function startTracing(options: TracingOptions): Tracing {
  const url = otlpTracesUrl(options.config);
  const processors: SpanProcessor[] = [];
  if (url) {
    const ca = options.config.otlpCertificate ? readFileSync(options.config.otlpCertificate) : undefined;
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url, ...(ca ? { httpAgentOptions: { ca } } : {}) })));
  }
  if (options.exporter) processors.push(new SimpleSpanProcessor(options.exporter));
  if (processors.length === 0) return DISABLED;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.service }),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(options.config.traceSampleRatio) }),
    spanProcessors: processors,
  });
  if (registered) throw new TypeError('tracing is started already in this process');
  registered = true;
  // The provider registers the AsyncLocalStorage context manager when none is given.
  provider.register({ propagator: new W3CTraceContextPropagator() });
  setTracingActive(true);
  return {
    enabled: true,
    flush: () => provider.forceFlush(),
    shutdown: async () => {
      await provider.shutdown();
      setTracingActive(false);
      trace.disable();
      propagation.disable();
      context.disable();
      registered = false;
    },
  };
}
