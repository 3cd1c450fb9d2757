import type { QosEvent } from './qos-sessions.js';
import type { UeView } from './ue-directory.js';
import type { UeLocation, UeRoaming } from './ue-monitoring.js';

/** What changed in the network reaches the modules here, whoever produced it. */
export interface NetworkEvents {
  /** Calls back with every network event; returns the function that stops the calls. */
  subscribe(listener: NetworkListener): () => void;
  /**
   * Sends an event of a module's own simulated capability (a delivery report of a simulated
   * SMS-SC, say) the way the network's events travel, so it reaches the modules' listeners like
   * them. Resolves once it is handed on; rejects, sending nothing, an event no replica would accept
   * (see capability-event.ts).
   */
  emit(event: CapabilityEventInput): Promise<void>;
}

/**
 * An event of a capability a module simulates itself. The payload is plain JSON; a UE travels in
 * it by T8 identifier (externalId, say), resolved by the module that receives it.
 */
export interface CapabilityEvent {
  readonly kind: 'capability';
  /** The module's API name, e.g. "3gpp-device-triggering". */
  readonly capability: string;
  /** What happened, e.g. "delivery-report". */
  readonly type: string;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly atMs: number;
  /** As every {@link NetworkEvent}'s. */
  readonly id?: string;
}

/** A capability event to send; without `atMs` it happens now by the adapter's clock. */
export interface CapabilityEventInput {
  readonly capability: string;
  readonly type: string;
  readonly payload: Readonly<Record<string, unknown>>;
  readonly atMs?: number;
}

/** What changed in the network, by kind. */
export type NetworkChange =
  | { readonly kind: 'location'; readonly ue: UeView; readonly location: UeLocation; readonly atMs: number }
  | { readonly kind: 'reachability'; readonly ue: UeView; readonly reachable: boolean; readonly atMs: number }
  | { readonly kind: 'roaming'; readonly ue: UeView; readonly roaming: UeRoaming; readonly atMs: number }
  | { readonly kind: 'qos'; readonly sessionId: string; readonly event: QosEvent; readonly appliedQosRef: string | undefined; readonly atMs: number }
  | CapabilityEvent;

/**
 * Something that changed in the network. `id` names the event once it travels between replicas:
 * a copy handled again (redelivered after a replica died) yields the same notification ids.
 */
export type NetworkEvent = NetworkChange & { readonly id?: string };

export type NetworkListener = (event: NetworkEvent) => Promise<void> | void;
