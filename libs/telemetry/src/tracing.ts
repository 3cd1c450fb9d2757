import { ConfigError, optionalStr } from '@aese/config';
import type { Setting } from '@aese/config';
import type { SpanExporter } from '@opentelemetry/sdk-trace-node';

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
