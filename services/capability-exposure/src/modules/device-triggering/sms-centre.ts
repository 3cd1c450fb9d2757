import { SCS_AS_ID_PATTERN } from '../../domain/invoke.js';
import type { CapabilityEvent, CapabilityEventInput, NetworkAdapter, UeRef } from '../../network/network-adapter.js';
import type { StillAuthorized } from '../toolkit/authorize.js';

export const DEVICE_TRIGGERING_API = '3gpp-device-triggering';
/** Capability event type of the SMS-SC's report on the end of a trigger. */
export const DELIVERY_REPORT_EVENT = 'delivery-report';
/** How often the simulated SMS-SC looks at the triggers it holds. */
export const SMS_CENTRE_POLL_MS = 250;
/** A report not yet seen to end its trigger is sent again after this (its first handling failed). */
const REPORT_AGAIN_AFTER_MS = 5_000;

/** How a trigger ended (TS 29.122 DeliveryResult). */
export const FINAL_RESULTS = ['SUCCESS', 'EXPIRED', 'FAILURE'] as const;
export type FinalResult = (typeof FINAL_RESULTS)[number];

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** A trigger the SMS-SC holds: one submission of a transaction (a replacement is the next one). */
export interface HeldTrigger {
  readonly scsAsId: string;
  readonly transactionId: string;
  readonly submission: number;
  readonly ue: UeRef;
  readonly submittedAtMs: number;
  readonly validUntilMs: number;
}

/** The SMS-SC's word on how one submission ended. */
export interface DeliveryReport {
  readonly scsAsId: string;
  readonly transactionId: string;
  readonly submission: number;
  readonly result: FinalResult;
}

/** The capability event of a delivery report (what a network adapter emits for the SMS-SC). */
export function deliveryReportEvent(report: DeliveryReport): CapabilityEventInput {
  const { scsAsId, transactionId, submission, result } = report;
  return { capability: DEVICE_TRIGGERING_API, type: DELIVERY_REPORT_EVENT, payload: { scsAsId, transactionId, submission, result } };
}

/** The delivery report an event carries, or undefined for anything else (a payload is untrusted input). */
export function readDeliveryReport(event: CapabilityEvent): DeliveryReport | undefined {
  if (event.capability !== DEVICE_TRIGGERING_API || event.type !== DELIVERY_REPORT_EVENT) return undefined;
  const { scsAsId, transactionId, submission, result } = event.payload;
  if (typeof scsAsId !== 'string' || !SCS_AS_ID_PATTERN.test(scsAsId) || typeof transactionId !== 'string' || !UUID.test(transactionId)) return undefined;
  if (!Number.isSafeInteger(submission) || (submission as number) < 1 || !(FINAL_RESULTS as readonly unknown[]).includes(result)) return undefined;
  return { scsAsId, transactionId, submission: submission as number, result: result as FinalResult };
}

/**
 * The SMS-SC the SCEF hands device triggers to (through the MTC-IWF, delivery over T4). It holds
 * what the SCEF has pending: a transaction's latest submission replaces the one before, and a
 * transaction that is gone is recalled. It reports each submission's end as a
 * {@link DELIVERY_REPORT_EVENT} capability event, which may reach another replica.
 */
export interface SmsServiceCentre {
  start(): void;
  stop(): Promise<void>;
}

export interface SimulatedSmsCentreOptions {
  readonly network: NetworkAdapter;
  readonly now: () => number;
  /** The triggers the SCEF has pending now; it may throw while its copy cannot be vouched for. */
  readonly held: () => readonly HeldTrigger[];
  /**
   * Whether the SCEF still lets the trigger out, asked just before it goes to the UE: a trigger
   * may wait a week, and its AS may lose the grant meanwhile. `denied` is a permanent FAILURE;
   * `unavailable` (no answer) leaves it waiting.
   */
  readonly mayDeliver: (t: HeldTrigger) => Promise<StillAuthorized>;
  /** Time from a submission to the first delivery attempt. */
  readonly deliveryDelayMs: number;
  readonly pollMs?: number;
}

/**
 * A simulated SMS-SC: once a submission is `deliveryDelayMs` old it is delivered as soon as the
 * core says its UE is reachable (SUCCESS); a UE that is not reachable keeps it waiting until its
 * validity period has run out (EXPIRED); a UE the network no longer knows, or a trigger the SCEF
 * no longer lets out when it would be delivered, fails it (FAILURE).
 * It reads the pending triggers from the SCEF's shared store, so any replica's SMS-SC finishes what
 * another accepted; a report sent twice ends its trigger once.
 */
export class SimulatedSmsCentre implements SmsServiceCentre {
  private timer: NodeJS.Timeout | undefined;
  private polling: Promise<void> | undefined;
  /** Submissions reported, and when: not reported again while their end is on its way. */
  private readonly reported = new Map<string, number>();

  constructor(private readonly options: SimulatedSmsCentreOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      // A slow poll is not overlapped by the next one.
      if (!this.polling) this.polling = this.poll().finally(() => (this.polling = undefined));
    }, this.options.pollMs ?? SMS_CENTRE_POLL_MS);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.polling;
  }

  /** One look at every held trigger; what ended is reported. */
  async poll(): Promise<void> {
    let held: readonly HeldTrigger[];
    try {
      held = this.options.held();
    } catch {
      // The SCEF's copy is stale (NATS unreachable): the next poll looks again.
      return;
    }
    const now = this.options.now();
    const live = new Set<string>();
    for (const t of held) {
      const key = `${t.scsAsId}/${t.transactionId}/${t.submission}`;
      live.add(key);
      const at = this.reported.get(key);
      if ((at !== undefined && now - at < REPORT_AGAIN_AFTER_MS) || now < t.submittedAtMs + this.options.deliveryDelayMs) continue;
      const result = await this.outcome(t, now);
      if (!result) continue;
      try {
        await this.options.network.emit(deliveryReportEvent({ scsAsId: t.scsAsId, transactionId: t.transactionId, submission: t.submission, result }));
        this.reported.set(key, now);
      } catch {
        // Not handed on (NATS unreachable): the next poll reports it again.
      }
    }
    for (const key of this.reported.keys()) if (!live.has(key)) this.reported.delete(key);
  }

  private async outcome(t: HeldTrigger, now: number): Promise<FinalResult | undefined> {
    const ue = await this.options.network.findUe(t.ue);
    if (!ue) return 'FAILURE';
    if ((await this.options.network.reachability(ue)).reachable) {
      const may = await this.options.mayDeliver(t);
      if (may === 'allowed') return 'SUCCESS';
      if (may === 'denied') return 'FAILURE';
      // Not decided now: the trigger waits, as for an unreachable UE.
    }
    return now >= t.validUntilMs ? 'EXPIRED' : undefined;
  }
}
