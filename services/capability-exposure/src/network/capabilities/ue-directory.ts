/** Which UEs and groups the network knows, by their T8 identifiers. */
export interface UeDirectory {
  /** The UE a T8 identifier names, or undefined when the network does not know it. */
  findUe(ref: UeRef): Promise<UeView | undefined>;
  /** Every UE and group the network knows, by their T8 identifiers (for the operator). */
  listIdentities(): Promise<NetworkIdentities>;
  /** Members of an external group, or undefined for an unknown group. */
  groupMembers(externalGroupId: string): Promise<readonly UeView[] | undefined>;
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
