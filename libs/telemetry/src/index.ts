export { DEFAULT_TRACE_SAMPLE_RATIO, otlpTracesUrl, TRACING_SETTINGS } from './tracing.js';
export type { Tracing, TracingConfig, TracingOptions } from './tracing.js';
export { activeTraceId, activeTraceparent, contextFromTraceparent, failSpan, inSpan, inSpanSoon, inSpanSync, meshTracer } from './spans.js';
export {
  cacheLookups,
  DecisionMetrics,
  METRIC_NAMES,
  METRICS_PATH,
  METRICS_SETTINGS,
  natsConnectionGauge,
  ReplayRefusalMetrics,
  RevocationLagMetrics,
  startServiceMetrics,
  T8RequestMetrics,
} from './metrics.js';
export type { CacheLookups, ServiceMetrics, ServiceMetricsOptions, T8Outcome } from './metrics.js';
