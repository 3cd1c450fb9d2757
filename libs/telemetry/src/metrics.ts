import { createServer } from 'node:http';
import type { Server } from 'node:http';
import { metrics } from '@opentelemetry/api';
import type { Attributes, Counter, Histogram, Meter } from '@opentelemetry/api';
import { int } from '@aese/config';

/** Where a metrics endpoint answers (Prometheus text format). */
export const METRICS_PATH = '/metrics';

/**
 * The metrics settings every service reads (part of the common settings). Off by default: each
 * service is one process, and a container or pod sets the port its scraper knows.
 */
export const METRICS_SETTINGS = {
  /** Port of the service's Prometheus endpoint, on `LISTEN_HOST`; 0 turns it off. */
  metricsPort: int('METRICS_PORT', 0, 0, 65535),
} as const;

/**
 * The metric names, part of the operators' contract (dashboards and alerts use them); README's
 * "Observability" section lists each with its labels. Prometheus sees dots as underscores and
 * counters with a `_total` suffix.
 */
export const METRIC_NAMES = {
  t8Requests: 'aese.t8.request.duration',
  authorizationDecisions: 'aese.authorization.decisions',
  replayRefusals: 'aese.replay.refusals',
  revocationLag: 'aese.revocation.lag',
  cacheLookups: 'aese.cache.lookups',
  natsConnected: 'aese.nats.connected',
  notificationDeliveries: 'aese.notification.deliveries',
} as const;

/** Buckets (seconds) of the latency histograms: a millisecond to ten seconds. */
const SECONDS_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface ServiceMetricsOptions {
  /** The service's name (`service.name` of its metrics). */
  readonly service: string;
  readonly host: string;
  /** 0: no endpoint, and the meter is the global API's (a no-op unless the process registered an SDK). */
  readonly port: number;
}

/** One service's metrics: the meter its instruments come from and its Prometheus endpoint. */
export interface ServiceMetrics {
  readonly meter: Meter;
  /** The endpoint's port, undefined when it is off. */
  readonly port: number | undefined;
  stop(): Promise<void>;
}

/**
 * Starts a service's own meter provider and Prometheus endpoint. Every service has its own, not
 * the process's global one, so services sharing a process (the test mesh) keep their metrics
 * apart. A port that cannot be bound fails the start, like the service's own port.
 */
export async function startServiceMetrics(options: ServiceMetricsOptions): Promise<ServiceMetrics> {
  if (options.port === 0) return { meter: metrics.getMeter(`aese-${options.service}`), port: undefined, stop: async () => undefined };
  // The SDK is loaded only by a process that exports metrics (see sdk.ts for tracing).
  const [{ PrometheusExporter }, { resourceFromAttributes }, { MeterProvider }, { ATTR_SERVICE_NAME }] = await Promise.all([
    import('@opentelemetry/exporter-prometheus'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/sdk-metrics'),
    import('@opentelemetry/semantic-conventions'),
  ]);
  const exporter = new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true });
  const provider = new MeterProvider({ resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: options.service }), readers: [exporter] });
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://metrics').pathname;
    if (req.method !== 'GET' || path !== METRICS_PATH) {
      res.statusCode = 404;
      res.end();
      return;
    }
    exporter.getMetricsRequestHandler(req, res);
  });
  try {
    await listen(server, options.host, options.port);
  } catch (err) {
    await provider.shutdown();
    throw err;
  }
  return {
    meter: provider.getMeter(`aese-${options.service}`),
    port: options.port,
    stop: async () => {
      await new Promise<void>(resolve => server.close(() => resolve()));
      await provider.shutdown();
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
}

/**
 * Attribute sets made once and reused, keyed by their label values: the hot path records with an
 * object it already has instead of building one per request.
 */
class AttributeSets {
  private readonly sets = new Map<string, Map<string, Attributes>>();

  constructor(
    private readonly first: string,
    private readonly second: string,
    private readonly base: Attributes = {},
  ) {}

  of(a: string, b: string): Attributes {
    let inner = this.sets.get(a);
    if (!inner) this.sets.set(a, (inner = new Map<string, Attributes>()));
    let set = inner.get(b);
    if (!set) inner.set(b, (set = { ...this.base, [this.first]: a, [this.second]: b }));
    return set;
  }
}

/** How a T8 request ended: answered by capability-exposure (its status says how), refused by one of the edge's checks, not decided (5xx), or abandoned by the client. */
export type T8Outcome = 'served' | 'refused' | 'unavailable' | 'aborted';

/** The edge's T8 requests: one histogram of their duration, by API and outcome (its count is the request rate). */
export class T8RequestMetrics {
  private readonly histogram: Histogram;
  private readonly attributes = new Map<string, AttributeSets>();

  constructor(meter: Meter) {
    this.histogram = meter.createHistogram(METRIC_NAMES.t8Requests, {
      description: 'T8 requests at the edge: duration by api, outcome (served, refused, unavailable, aborted) and HTTP status',
      unit: 's',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    });
  }

  /** `api` is the T8 API's name, or `unknown` when the request was refused before it was routed. */
  record(api: string, outcome: T8Outcome, status: number, seconds: number): void {
    let sets = this.attributes.get(api);
    if (!sets) this.attributes.set(api, (sets = new AttributeSets('outcome', 'status', { api })));
    this.histogram.record(seconds, sets.of(outcome, String(status)));
  }
}

/** Authorization decisions by outcome, and a denial's cause. */
export class DecisionMetrics {
  private readonly counter: Counter;
  private readonly sets = new AttributeSets('decision', 'cause');

  constructor(meter: Meter) {
    this.counter = meter.createCounter(METRIC_NAMES.authorizationDecisions, { description: 'Authorization decisions by decision (allow, deny) and deny cause' });
  }

  /** `cause` is empty for an allow. */
  decided(allowed: boolean, cause: string): void {
    this.counter.add(1, this.sets.of(allowed ? 'allow' : 'deny', allowed ? '' : cause));
  }
}

/** Requests refused as replays, or not decided, by verdict (`replayed`, `stale`, `future`, `unavailable`, `invalid`). */
export class ReplayRefusalMetrics {
  private readonly counter: Counter;
  private readonly sets = new Map<string, Attributes>();

  constructor(meter: Meter) {
    this.counter = meter.createCounter(METRIC_NAMES.replayRefusals, { description: 'Requests refused by the replay check, by verdict' });
  }

  refused(verdict: string): void {
    let set = this.sets.get(verdict);
    if (!set) this.sets.set(verdict, (set = { verdict }));
    this.counter.add(1, set);
  }
}

/** A cache's lookups, so that its hit ratio is hits / (hits + misses). */
export interface CacheLookups {
  hit(): void;
  miss(): void;
}

/** The lookups of one named cache (`cache` label), as hits and misses (`result` label). */
export function cacheLookups(meter: Meter, cache: string): CacheLookups {
  const counter = meter.createCounter(METRIC_NAMES.cacheLookups, { description: 'Cache lookups by cache and result (hit, miss)' });
  const hit: Attributes = { cache, result: 'hit' };
  const miss: Attributes = { cache, result: 'miss' };
  return { hit: () => counter.add(1, hit), miss: () => counter.add(1, miss) };
}

/** Time from a revocation's publication to its enforcement at this edge, by kind. */
export class RevocationLagMetrics {
  private readonly histogram: Histogram;
  private readonly sets = new Map<string, Attributes>();

  constructor(meter: Meter) {
    this.histogram = meter.createHistogram(METRIC_NAMES.revocationLag, {
      description: 'Seconds from a revocation event being published to it being enforced at the edge, by kind',
      unit: 's',
      advice: { explicitBucketBoundaries: SECONDS_BUCKETS },
    });
  }

  enforced(kind: string, lagMs: number): void {
    let set = this.sets.get(kind);
    if (!set) this.sets.set(kind, (set = { kind }));
    // A publisher's clock ahead of ours would give a negative lag: it was enforced at once.
    this.histogram.record(Math.max(0, lagMs) / 1000, set);
  }
}

/**
 * The state of a NATS connection as a 1/0 gauge, read when scraped. Returns the setter the
 * connection's status events drive.
 */
export function natsConnectionGauge(meter: Meter): (connected: boolean) => void {
  let value = 1;
  meter
    .createObservableGauge(METRIC_NAMES.natsConnected, { description: "1 while the service's NATS connection is up, 0 while it is down or closed" })
    .addCallback(result => result.observe(value));
  return connected => {
    value = connected ? 1 : 0;
  };
}
