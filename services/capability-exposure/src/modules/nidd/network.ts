import { createHash } from 'node:crypto';
import { SCS_AS_ID_PATTERN } from '../../domain/invoke.js';
import type { CapabilityEvent, CapabilityEventInput, NetworkAdapter, NetworkEvent, UeView } from '../../network/network-adapter.js';
import { dataBytes, NIDD_API } from './model.js';

/** Capability event type of the non-IP data a UE sends (MO NIDD). */
export const UPLINK_EVENT = 'uplink-data';
/** Largest non-IP packet the simulated network configures in the UEs (PCO), in bytes. */
export const DEFAULT_MAXIMUM_PACKET_BYTES = 1024;
/** Size of the reading a simulated UE sends. */
const READING_BYTES = 8;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** What a delivered downlink packet reports: the UE's own acknowledgement with RDS, the MME's without. */
export type DeliveredStatus = 'SUCCESS_ACKNOWLEDGED' | 'SUCCESS_NEXT_HOP_ACKNOWLEDGED';

export interface Downlink {
  readonly data: string;
  readonly reliableDataService?: boolean;
}

/**
 * The NIDD configuration a UE's data belongs to: the T6a connection of that UE with that SCS/AS
 * (TS 23.682 clause 5.13), by the configuration's owner and id.
 */
export interface ConfigurationRef {
  readonly scsAsId: string;
  readonly configurationId: string;
}

/** Non-IP data a UE sent on one configuration's connection, as the network hands it to the SCEF. */
export interface UplinkData extends ConfigurationRef {
  readonly externalId: string;
  /** base64. */
  readonly data: string;
}

/**
 * The NIDD side of the network (the SCEF's T6a/T6b path through the MME): mobile-terminated
 * packets sent to a UE now, and the mobile-originated packets UEs send, which arrive as
 * {@link UPLINK_EVENT} capability events.
 */
export interface NiddNetwork {
  /** Largest packet the UEs were given (PCO), in bits, as NiddConfiguration.maximumPacketSize. */
  readonly maximumPacketSizeBits: number;
  /** Whether a packet would reach the UE now. */
  reachable(ue: UeView): Promise<boolean>;
  /**
   * Sends a packet to a UE now: its delivery status, or undefined when the UE cannot be reached.
   * `reachable` is what a network event just said; without it the network is asked.
   */
  send(ue: UeView, downlink: Downlink, reachable?: boolean): Promise<DeliveredStatus | undefined>;
  /**
   * The UEs' own traffic after a network change: a UE with NIDD that wakes or moves sends a
   * reading on each of its configurations (the application of each AS on the UE sends its own).
   */
  afterChange(event: NetworkEvent, configurationsOf: (ue: UeView) => Promise<readonly ConfigurationRef[]>): Promise<void>;
}

/** The capability event of a UE's uplink packet (what a network adapter emits for MO data). */
export function uplinkEvent(uplink: UplinkData, atMs?: number): CapabilityEventInput {
  const { scsAsId, configurationId, externalId, data } = uplink;
  return { capability: NIDD_API, type: UPLINK_EVENT, payload: { scsAsId, configurationId, externalId, data }, ...(atMs === undefined ? {} : { atMs }) };
}

/** The uplink packet an event carries, or undefined for anything else (a payload is untrusted input). */
export function readUplink(event: CapabilityEvent, maximumBytes: number): UplinkData | undefined {
  if (event.capability !== NIDD_API || event.type !== UPLINK_EVENT) return undefined;
  const { scsAsId, configurationId, externalId, data } = event.payload;
  if (typeof scsAsId !== 'string' || !SCS_AS_ID_PATTERN.test(scsAsId) || typeof configurationId !== 'string' || !UUID.test(configurationId)) return undefined;
  const size = dataBytes(data);
  if (typeof externalId !== 'string' || size === undefined || size > maximumBytes) return undefined;
  return { scsAsId, configurationId, externalId, data: data as string };
}

/**
 * The simulated NIDD network: a packet reaches a UE exactly when the core says the UE is
 * reachable, acknowledged by the UE itself when the reliable data service was asked for. A UE
 * with NIDD configured sends an 8-byte reading on each of its configurations when it becomes
 * reachable and when it moves while reachable; a reading follows from the UE, the configuration
 * and the time only, so replays give the same bytes.
 */
export class SimulatedNiddNetwork implements NiddNetwork {
  readonly maximumPacketSizeBits: number;

  constructor(
    private readonly network: NetworkAdapter,
    maximumPacketBytes = DEFAULT_MAXIMUM_PACKET_BYTES,
  ) {
    this.maximumPacketSizeBits = maximumPacketBytes * 8;
  }

  async reachable(ue: UeView): Promise<boolean> {
    return (await this.network.reachability(ue)).reachable;
  }

  async send(ue: UeView, downlink: Downlink, reachable?: boolean): Promise<DeliveredStatus | undefined> {
    if (!(reachable ?? (await this.reachable(ue)))) return undefined;
    return downlink.reliableDataService === true ? 'SUCCESS_ACKNOWLEDGED' : 'SUCCESS_NEXT_HOP_ACKNOWLEDGED';
  }

  async afterChange(event: NetworkEvent, configurationsOf: (ue: UeView) => Promise<readonly ConfigurationRef[]>): Promise<void> {
    if (event.kind !== 'location' && event.kind !== 'reachability') return;
    if (event.kind === 'reachability' && !event.reachable) return;
    const configurations = await configurationsOf(event.ue);
    if (configurations.length === 0 || (event.kind === 'location' && !(await this.reachable(event.ue)))) return;
    const { externalId } = event.ue;
    for (const { scsAsId, configurationId } of configurations) {
      const reading = createHash('sha256').update(`nidd-reading\n${externalId}\n${scsAsId}\n${configurationId}\n${event.atMs}`).digest().subarray(0, READING_BYTES);
      await this.network.emit(uplinkEvent({ scsAsId, configurationId, externalId, data: reading.toString('base64') }, event.atMs));
    }
  }
}
