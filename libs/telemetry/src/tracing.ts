import { setTracingActive } from './spans.js';
import { readFileSync } from 'node:fs';
import { context, propagation, trace } from '@opentelemetry/api';
import { ConfigError, optionalStr } from '@aese/config';
import type { Setting } from '@aese/config';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import { BatchSpanProcessor, NodeTracerProvider, ParentBasedSampler, SimpleSpanProcessor, TraceIdRatioBasedSampler } from '@opentelemetry/sdk-trace-node';
import type { SpanExporter, SpanProcessor } from '@opentelemetry/sdk-trace-node';

/** Share of new traces recorded when no sampling ratio is configured: every one. */
export const DEFAULT_TRACE_SAMPLE_RATIO = 1;

/** A ratio setting in [0, 1]. */
function ratio(envName: string, defaultValue: number): Setting<number> {
  return {
    env: envName,
    default: defaultValue,
    parse: (raw, name) => {
      const n = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(n) || n < 0 || n > 1) throw new ConfigError(`setting ${name} must be a number in [0, 1]`);
      return n;
    },
  };
}

/**
 * The tracing settings every service reads (part of the common settings). The names are
 * OpenTelemetry's own, so a platform's usual environment works unchanged.
 */
export const TRACING_SETTINGS = {
  /** OTLP/HTTP base URL (`<url>/v1/traces` receives spans); unset with the next: nothing exported. */
  otlpEndpoint: optionalStr('OTEL_EXPORTER_OTLP_ENDPOINT'),
  /** OTLP/HTTP traces URL, used as is; wins over the base URL. */
  otlpTracesEndpoint: optionalStr('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'),
  /** PEM of the CAs an https collector's certificate chains to (default: the system's). */
  otlpCertificate: optionalStr('OTEL_EXPORTER_OTLP_CERTIFICATE'),
  /** Share of new traces recorded; a request that arrives with a trace context follows its caller's decision. */
  traceSampleRatio: ratio('OTEL_TRACES_SAMPLER_ARG', DEFAULT_TRACE_SAMPLE_RATIO),
} as const;

/** The tracing settings as read. */
export interface TracingConfig {
  readonly otlpEndpoint: string | undefined;
  readonly otlpTracesEndpoint: string | undefined;
  readonly otlpCertificate?: string | undefined;
  readonly traceSampleRatio: number;
}

export interface TracingOptions {
  /** The service name spans are recorded under (`service.name`). */
  readonly service: string;
  readonly config: TracingConfig;
  /** Where spans go besides OTLP: tests pass an in-memory exporter (exported as each span ends). */
  readonly exporter?: SpanExporter;
}

/** The process's tracing, as started. */
export interface Tracing {
  /** False when nothing would receive spans: nothing is registered and the API stays a no-op. */
  readonly enabled: boolean;
  /** Exports what is buffered. */
  flush(): Promise<void>;
  /** Exports what is buffered and unregisters the provider. */
  shutdown(): Promise<void>;
}

/** The OTLP/HTTP traces URL the settings name, if any. */
export function otlpTracesUrl(config: TracingConfig): string | undefined {
  if (config.otlpTracesEndpoint) return config.otlpTracesEndpoint;
  if (config.otlpEndpoint) return `${config.otlpEndpoint.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

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
