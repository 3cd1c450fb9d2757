import { randomUUID } from 'node:crypto';
import type { Logger } from '@aese/logger';
import type { NatsConnection } from '@aese/nats';
import { nonceTtlMs, ReplayGuard, ReplayLeases, StreamNonceStore } from '@aese/replay-window';
import type { ReplayVerdict } from './t8-handler.js';

/** Where an edge's replay checks are decided. */
export const REPLAY_DECISION_MODES = ['leased', 'replay-guard'] as const;
export type ReplayDecisionMode = (typeof REPLAY_DECISION_MODES)[number];

export interface ReplayDecisionOptions {
  readonly nc: NatsConnection;
  readonly logger: Logger;
  /** `leased`: in this edge for the ASes whose window it holds; `replay-guard`: always through the service. */
  readonly mode: ReplayDecisionMode;
  readonly windowS: number;
  readonly skewS: number;
  readonly leaseMs: number;
  /** How long one append may take before the check is undecided (503). */
  readonly timeoutMs: number;
  readonly replicas: number;
  /** The replay-guard service (CheckAndRecord), for every AS this edge does not hold. */
  readonly remote: (scsAsId: string, nonce: string, created: number) => Promise<ReplayVerdict>;
}

export interface ReplayDecisions {
  readonly check: (scsAsId: string, nonce: string, created: number) => Promise<ReplayVerdict>;
  readonly close: () => Promise<void>;
}

/**
 * The edge's replay check. An AS's window is decided in this process only while this edge holds
 * the AS's lease (libs/replay-window ReplayLeases), with the same rules and the same durable
 * stream as the replay-guard service: a nonce is fresh only once appended behind the AS's
 * expected-last-sequence fence. For any other AS the edge asks replay-guard (and tries to take
 * the lease in the background), so a non-owner never decides alone.
 */
export async function openReplayDecisions(options: ReplayDecisionOptions): Promise<ReplayDecisions> {
  if (options.mode === 'replay-guard') return { check: options.remote, close: async () => undefined };
  const ttlMs = nonceTtlMs(options.windowS, options.skewS);
  const store = await StreamNonceStore.open(options.nc, { ttlMs, timeoutMs: options.timeoutMs, replicas: options.replicas, logger: options.logger });
  let leases: ReplayLeases;
  try {
    leases = await ReplayLeases.open(options.nc, { holder: `edge-${randomUUID()}`, leaseMs: options.leaseMs, logger: options.logger, prepare: t => store.prepare(t) });
  } catch (err) {
    store.close();
    throw err;
  }
  const guard = new ReplayGuard({ store, windowS: options.windowS, skewS: options.skewS });
  return {
    check: (scsAsId, nonce, created) => {
      if (leases.owns(scsAsId)) return guard.check({ scsAsId, nonce, created });
      leases.want(scsAsId);
      return options.remote(scsAsId, nonce, created);
    },
    close: async () => {
      await leases.close();
      store.close();
    },
  };
}
