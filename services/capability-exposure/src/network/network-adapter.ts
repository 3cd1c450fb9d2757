/**
 * What the capability-exposure modules need from the mobile network. The embedded default is
 * the simulated core ({@link SimulatedCore}); a real deployment puts an adapter to the HSS/UDM,
 * MME/AMF, PCRF/PCF behind the same interface. No method returns an IMSI/SUPI: the permanent
 * subscriber identity stays inside the adapter.
 */
export interface NetworkAdapter {
  /** The UE a T8 identifier names, or undefined when the network does not know it. */
  findUe(ref: UeRef): Promise<UeView | undefined>;
  /** Every UE and group the network knows, by their T8 identifiers (for the operator). */
  listIdentities(): Promise<NetworkIdentities>;
  /** Members of an external group, or undefined for an unknown group. */
  groupMembers(externalGroupId: string): Promise<readonly UeView[] | undefined>;
  /** Current (or last known) location of a UE. */
  locate(ue: UeView): Promise<UeLocation>;
  /** Whether the UE is reachable now. */
  reachability(ue: UeView): Promise<UeReachability>;
  /** Whether the UE is roaming and in which PLMN it is served. */
  roaming(ue: UeView): Promise<UeRoaming>;
  /** Calls back with every network event; returns the function that stops the calls. */
  subscribe(listener: NetworkListener): () => void;
  /** Pre-defined QoS references the network offers (TS 29.122 `qosReference`). */
  qosReferences(): readonly string[];
  createQosSession(request: QosSessionRequest): Promise<QosSession>;
  updateQosSession(id: string, request: QosSessionRequest): Promise<QosSession | undefined>;
  deleteQosSession(id: string): Promise<boolean>;
  /**
   * Makes sure the network holds a session the SCEF has stored, under the same id: a real
   * network keeps its sessions across SCEF restarts; the simulator re-creates them.
   */
  restoreQosSession(id: string, request: QosSessionRequest): Promise<void>;
  /** Stops timers; pending listener work is awaited. */
  stop(): Promise<void>;
}

/** A T8 identifier of one UE; exactly one member is used, in this order of preference. */
export interface UeRef {
  readonly externalId?: string;
  readonly msisdn?: string;
  readonly ipv4Addr?: string;
  readonly ipv6Addr?: string;
  readonly macAddr?: string;
}

/** What the SCEF may know of a UE: its external identifiers and addresses, never its IMSI. */
export interface UeView {
  /** Opaque handle inside this SCEF; not a 3GPP identifier and never sent out. */
  readonly handle: string;
  readonly externalId: string;
  readonly msisdn: string;
  readonly ipv4Addr: string;
  readonly ipv6Addr: string;
  readonly groups: readonly string[];
}

/** The identifiers of a network's UEs and groups: external identifiers and addresses only. */
export interface NetworkIdentities {
  readonly ues: readonly Omit<UeView, 'handle'>[];
  readonly groups: readonly { readonly externalGroupId: string; readonly memberCount: number }[];
}

export interface Plmn {
  readonly mcc: string;
  readonly mnc: string;
}

export type RadioAccess = 'EUTRA' | 'NR';

export interface UeLocation {
  readonly plmn: Plmn;
  readonly rat: RadioAccess;
  /** Tracking area code, 4 (EPS) or 6 (5GS) hex digits. */
  readonly tac: string;
  /** E-UTRA cell identity (7 hex digits) or NR cell identity (9 hex digits). */
  readonly cellId: string;
  readonly latitude: number;
  readonly longitude: number;
  readonly observedAtMs: number;
}

export interface UeReachability {
  readonly reachable: boolean;
  readonly changedAtMs: number;
}

export interface UeRoaming {
  readonly roaming: boolean;
  readonly servingPlmn: Plmn;
  readonly changedAtMs: number;
}

export const QOS_EVENTS = ['QOS_GUARANTEED', 'QOS_NOT_GUARANTEED', 'SESSION_TERMINATION'] as const;
export type QosEvent = (typeof QOS_EVENTS)[number];

export interface QosSessionRequest {
  readonly ue: UeView;
  readonly qosReference?: string;
  readonly altQosReferences?: readonly string[];
}

export interface QosSession {
  readonly id: string;
  readonly ueHandle: string;
  readonly appliedQosRef: string | undefined;
  readonly guaranteed: boolean;
}

/** What changed in the network, by kind. */
export type NetworkChange =
  | { readonly kind: 'location'; readonly ue: UeView; readonly location: UeLocation; readonly atMs: number }
  | { readonly kind: 'reachability'; readonly ue: UeView; readonly reachable: boolean; readonly atMs: number }
  | { readonly kind: 'roaming'; readonly ue: UeView; readonly roaming: UeRoaming; readonly atMs: number }
  | { readonly kind: 'qos'; readonly sessionId: string; readonly event: QosEvent; readonly appliedQosRef: string | undefined; readonly atMs: number };

/**
 * Something that changed in the network. `id` names the event once it travels between replicas:
 * a copy handled again (redelivered after a replica died) yields the same notification ids.
 */
export type NetworkEvent = NetworkChange & { readonly id?: string };

export type NetworkListener = (event: NetworkEvent) => Promise<void> | void;
