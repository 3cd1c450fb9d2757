import { randomUUID } from 'node:crypto';
import { SeededRandom } from './prng.js';
import { newCapabilityEvent } from './capability-event.js';
import type {
  CapabilityEventInput,
  NetworkAdapter,
  NetworkEvent,
  NetworkIdentities,
  NetworkListener,
  Plmn,
  QosEvent,
  QosSession,
  QosSessionRequest,
  RadioAccess,
  UeLocation,
  UeReachability,
  UeRef,
  UeRoaming,
  UeView,
} from './network-adapter.js';

/** Defaults of the simulated network; each has a SIM_* setting in the service. */
export const DEFAULT_SIM_SEED = 1;
export const DEFAULT_SIM_UE_COUNT = 100;
export const DEFAULT_SIM_GROUP_COUNT = 4;
export const DEFAULT_SIM_TRACKING_AREAS = 4;
export const DEFAULT_SIM_CELLS_PER_TA = 4;
/** Per tick, the chance that a UE changes cell, flips reachability, or (roamers) flips roaming. */
export const SIM_MOVE_PROBABILITY = 0.3;
export const SIM_REACHABILITY_FLIP_PROBABILITY = 0.1;
export const SIM_ROAMING_FLIP_PROBABILITY = 0.2;
export const SIM_QOS_FLIP_PROBABILITY = 0.3;
/** Every tenth UE is a roamer. */
export const SIM_ROAMER_EVERY = 10;
export const SIM_DOMAIN = 'scef.test';
export const HOME_PLMN: Plmn = { mcc: '001', mnc: '01' };
export const VISITED_PLMN: Plmn = { mcc: '001', mnc: '02' };
export const SIM_QOS_REFERENCES = ['qos-gold', 'qos-silver', 'qos-bronze'] as const;

export interface SimulatedCoreOptions {
  readonly seed?: number;
  readonly ueCount?: number;
  readonly groupCount?: number;
  readonly trackingAreas?: number;
  readonly cellsPerTa?: number;
  /** Interval of the automatic tick; 0 disables it (tests call advance()). */
  readonly tickMs?: number;
  /** Clock for event times; tests may freeze it. */
  readonly now?: () => number;
  /** Called when a listener throws; the event loop of the simulation never stops for it. */
  readonly onListenerError?: (err: unknown) => void;
}

interface Cell {
  readonly ta: number;
  readonly tac: string;
  readonly rat: RadioAccess;
  readonly cellId: string;
  readonly latitude: number;
  readonly longitude: number;
}

interface SimUe {
  readonly view: UeView;
  /** Permanent identity; stays in this file. */
  readonly imsi: string;
  cell: number;
  reachable: boolean;
  reachabilityChangedAtMs: number;
  roaming: boolean;
  roamingChangedAtMs: number;
  locatedAtMs: number;
}

/**
 * A QoS session created, changed or deleted through this simulator's adapter calls: what another
 * replica's copy of the network needs to know so that its ticks (and queries) see the session.
 */
export type QosSessionChange =
  { readonly op: 'upsert'; readonly id: string; readonly ue: UeView; readonly candidates: readonly string[] } | { readonly op: 'delete'; readonly id: string };

export type QosSessionListener = (change: QosSessionChange) => Promise<void> | void;

interface SimSession {
  readonly id: string;
  readonly ueHandle: string;
  appliedQosRef: string | undefined;
  candidates: string[];
  guaranteed: boolean;
}

const pad = (n: number, width: number): string => String(n).padStart(width, '0');

/** The IMSI of simulated UE i (1-based): MCC 001, MNC 01, 10-digit MSIN. Used only inside. */
export function simulatedImsi(i: number): string {
  return `${HOME_PLMN.mcc}${HOME_PLMN.mnc}${pad(i, 10)}`;
}

/** The T8 identifiers of simulated UE i (1-based), as an AS would know them. */
export function simulatedUeIdentifiers(i: number): { externalId: string; msisdn: string; ipv4Addr: string; ipv6Addr: string } {
  return {
    externalId: `ue${i}@${SIM_DOMAIN}`,
    msisdn: `33610${pad(i, 6)}`,
    ipv4Addr: `10.45.${(i >> 8) & 255}.${i & 255}`,
    ipv6Addr: `2001:db8:45::${i.toString(16)}`,
  };
}

/** The external group identifier of simulated group g (1-based). */
export function simulatedGroupId(g: number): string {
  return `group${g}@${SIM_DOMAIN}`;
}

/**
 * A deterministic mobile network for development and tests: UEs with externalId / msisdn / IP
 * addresses (and an IMSI that never leaves this class), external groups, E-UTRA and NR cells in
 * tracking areas, UEs that move, lose and regain reachability and roam, and QoS sessions whose
 * guarantee comes and goes. Everything follows a seeded generator, one step per tick: the same
 * seed and the same calls give the same events.
 */
export class SimulatedCore implements NetworkAdapter {
  private readonly rng: SeededRandom;
  private readonly cells: Cell[] = [];
  private readonly ues: SimUe[] = [];
  private readonly byExternalId = new Map<string, SimUe>();
  private readonly byMsisdn = new Map<string, SimUe>();
  private readonly byIp = new Map<string, SimUe>();
  private readonly byHandle = new Map<string, SimUe>();
  private readonly groups = new Map<string, SimUe[]>();
  private readonly sessions = new Map<string, SimSession>();
  private readonly listeners = new Set<NetworkListener>();
  private readonly sessionListeners = new Set<QosSessionListener>();
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  /** Capability events still with their listeners; stop() waits for them too. */
  private readonly emitting = new Set<Promise<void>>();
  private ticks = 0;
  /** A periodic tick waits or runs: the next one is skipped. */
  private timerTickPending = false;

  constructor(private readonly options: SimulatedCoreOptions = {}) {
    this.rng = new SeededRandom(options.seed ?? DEFAULT_SIM_SEED);
    this.now = options.now ?? Date.now;
    const tas = options.trackingAreas ?? DEFAULT_SIM_TRACKING_AREAS;
    const perTa = options.cellsPerTa ?? DEFAULT_SIM_CELLS_PER_TA;
    for (let ta = 0; ta < tas; ta++) {
      for (let c = 0; c < perTa; c++) {
        const rat: RadioAccess = c % 2 === 0 ? 'EUTRA' : 'NR';
        const local = (ta + 1) * 256 + c + 1;
        this.cells.push({
          ta,
          tac: rat === 'EUTRA' ? pad(ta + 1, 4) : pad(ta + 1, 6),
          rat,
          cellId: rat === 'EUTRA' ? local.toString(16).padStart(7, '0') : (local * 16).toString(16).padStart(9, '0'),
          latitude: 48.8 + ta * 0.02 + c * 0.004,
          longitude: 2.3 + ta * 0.02 + c * 0.005,
        });
      }
    }
    const groupCount = options.groupCount ?? DEFAULT_SIM_GROUP_COUNT;
    for (let g = 1; g <= groupCount; g++) this.groups.set(simulatedGroupId(g), []);
    const at = this.now();
    const count = options.ueCount ?? DEFAULT_SIM_UE_COUNT;
    for (let i = 1; i <= count; i++) {
      const ids = simulatedUeIdentifiers(i);
      const groups = groupCount > 0 ? [simulatedGroupId(((i - 1) % groupCount) + 1)] : [];
      const ue: SimUe = {
        view: { handle: `sim-${i}`, ...ids, groups },
        imsi: simulatedImsi(i),
        cell: this.rng.int(this.cells.length),
        reachable: this.rng.next() < 0.8,
        reachabilityChangedAtMs: at,
        roaming: false,
        roamingChangedAtMs: at,
        locatedAtMs: at,
      };
      this.ues.push(ue);
      this.byExternalId.set(ids.externalId, ue);
      this.byMsisdn.set(ids.msisdn, ue);
      this.byIp.set(ids.ipv4Addr, ue);
      this.byIp.set(ids.ipv6Addr, ue);
      this.byHandle.set(ue.view.handle, ue);
      for (const g of groups) this.groups.get(g)!.push(ue);
    }
    const tickMs = options.tickMs ?? 0;
    if (tickMs > 0) {
      this.timer = setInterval(() => this.tickOnTimer(), tickMs);
      this.timer.unref();
    }
  }

  /** The time this network gives its events, by the clock it was given. */
  nowMs(): number {
    return this.now();
  }

  /** How many ticks have run. */
  get tickCount(): number {
    return this.ticks;
  }

  /**
   * Runs `steps` ticks and resolves when every listener has handled every event they produced.
   * Ticks are serialised: a call waits for the ones before it.
   */
  advance(steps = 1): Promise<void> {
    const run = this.running.then(async () => {
      for (let s = 0; s < steps; s++) await this.emitAll(this.tick());
    });
    this.running = run.catch(() => undefined);
    return run;
  }

  /**
   * A periodic tick. While the previous one still waits or runs (its listeners are slower than the
   * period), this one is skipped: under load the network's clock slows down instead of queueing
   * ticks without bound, which would grow memory, keep the CPU busy and make stop() wait for the
   * whole backlog.
   */
  tickOnTimer(): void {
    if (this.timerTickPending) return;
    this.timerTickPending = true;
    const done = (): void => {
      this.timerTickPending = false;
    };
    this.advance(1).then(done, done);
  }

  private tick(): NetworkEvent[] {
    this.ticks++;
    const at = this.now();
    const events: NetworkEvent[] = [];
    for (const [index, ue] of this.ues.entries()) {
      if (this.rng.next() < SIM_MOVE_PROBABILITY) {
        const here = this.cells[ue.cell];
        // Mostly within the tracking area, sometimes to the next one.
        const sameTa = this.rng.next() < 0.7;
        const ta = sameTa ? here.ta : (here.ta + 1) % (this.cells.length / (this.options.cellsPerTa ?? DEFAULT_SIM_CELLS_PER_TA));
        const candidates = this.cells.map((c, i) => ({ c, i })).filter(x => x.c.ta === ta && x.i !== ue.cell);
        if (candidates.length > 0) {
          ue.cell = candidates[this.rng.int(candidates.length)].i;
          ue.locatedAtMs = at;
          events.push({ kind: 'location', ue: ue.view, location: this.locationOf(ue), atMs: at });
        }
      }
      if (this.rng.next() < SIM_REACHABILITY_FLIP_PROBABILITY) {
        ue.reachable = !ue.reachable;
        ue.reachabilityChangedAtMs = at;
        events.push({ kind: 'reachability', ue: ue.view, reachable: ue.reachable, atMs: at });
      }
      if ((index + 1) % SIM_ROAMER_EVERY === 0 && this.rng.next() < SIM_ROAMING_FLIP_PROBABILITY) {
        ue.roaming = !ue.roaming;
        ue.roamingChangedAtMs = at;
        events.push({ kind: 'roaming', ue: ue.view, roaming: this.roamingOf(ue), atMs: at });
      }
    }
    for (const s of this.sessions.values()) {
      if (this.rng.next() < SIM_QOS_FLIP_PROBABILITY) {
        s.guaranteed = !s.guaranteed;
        // Losing the guarantee falls back to the next alternative reference, if any.
        if (!s.guaranteed && s.candidates.length > 1) s.appliedQosRef = s.candidates[1];
        if (s.guaranteed) s.appliedQosRef = s.candidates[0];
        const event: QosEvent = s.guaranteed ? 'QOS_GUARANTEED' : 'QOS_NOT_GUARANTEED';
        events.push({ kind: 'qos', sessionId: s.id, event, appliedQosRef: s.appliedQosRef, atMs: at });
      }
    }
    return events;
  }

  private async emitAll(events: readonly NetworkEvent[]): Promise<void> {
    for (const e of events) {
      for (const l of [...this.listeners]) {
        try {
          await l(e);
        } catch (err) {
          this.options.onListenerError?.(err);
        }
      }
    }
  }

  private locationOf(ue: SimUe): UeLocation {
    const cell = this.cells[ue.cell];
    return {
      plmn: ue.roaming ? VISITED_PLMN : HOME_PLMN,
      rat: cell.rat,
      tac: cell.tac,
      cellId: cell.cellId,
      latitude: cell.latitude,
      longitude: cell.longitude,
      observedAtMs: ue.locatedAtMs,
    };
  }

  private roamingOf(ue: SimUe): UeRoaming {
    return { roaming: ue.roaming, servingPlmn: ue.roaming ? VISITED_PLMN : HOME_PLMN, changedAtMs: ue.roamingChangedAtMs };
  }

  private ue(view: UeView): SimUe {
    const ue = this.byHandle.get(view.handle);
    if (!ue) throw new TypeError('UE handle from another network adapter');
    return ue;
  }

  async findUe(ref: UeRef): Promise<UeView | undefined> {
    if (ref.externalId !== undefined) return this.byExternalId.get(ref.externalId)?.view;
    if (ref.msisdn !== undefined) return this.byMsisdn.get(ref.msisdn.replace(/^\+/, ''))?.view;
    if (ref.ipv4Addr !== undefined) return this.byIp.get(ref.ipv4Addr)?.view;
    if (ref.ipv6Addr !== undefined) return this.byIp.get(ref.ipv6Addr.toLowerCase())?.view;
    return undefined;
  }

  async listIdentities(): Promise<NetworkIdentities> {
    return {
      ues: [...this.byExternalId.values()].map(({ view: { handle: _handle, ...ids } }) => ({ ...ids, groups: [...ids.groups] })),
      groups: [...this.groups].map(([externalGroupId, members]) => ({ externalGroupId, memberCount: members.length })),
    };
  }

  async groupMembers(externalGroupId: string): Promise<readonly UeView[] | undefined> {
    return this.groups.get(externalGroupId)?.map(u => u.view);
  }

  async locate(view: UeView): Promise<UeLocation> {
    return this.locationOf(this.ue(view));
  }

  async reachability(view: UeView): Promise<UeReachability> {
    const ue = this.ue(view);
    return { reachable: ue.reachable, changedAtMs: ue.reachabilityChangedAtMs };
  }

  async roaming(view: UeView): Promise<UeRoaming> {
    return this.roamingOf(this.ue(view));
  }

  subscribe(listener: NetworkListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * Hands a module's capability event to the listeners as a tick hands its events (listener
   * errors go to onListenerError) and resolves once they have handled it. It is not queued behind
   * the ticks: a listener handling a tick's event may emit one and wait for it. Draws nothing from
   * the generator, so the simulation's course stays the same.
   */
  async emit(input: CapabilityEventInput): Promise<void> {
    const event = newCapabilityEvent(input, this.now());
    const handled = this.emitAll([event]);
    this.emitting.add(handled);
    try {
      await handled;
    } finally {
      this.emitting.delete(handled);
    }
  }

  qosReferences(): readonly string[] {
    return SIM_QOS_REFERENCES;
  }

  async createQosSession(request: QosSessionRequest): Promise<QosSession> {
    const ue = this.ue(request.ue);
    const candidates = [request.qosReference, ...(request.altQosReferences ?? [])].filter((r): r is string => r !== undefined);
    const s: SimSession = { id: randomUUID(), ueHandle: ue.view.handle, appliedQosRef: candidates[0], candidates, guaranteed: true };
    this.sessions.set(s.id, s);
    await this.sessionChanged({ op: 'upsert', id: s.id, ue: ue.view, candidates });
    return this.sessionView(s);
  }

  async updateQosSession(id: string, request: QosSessionRequest): Promise<QosSession | undefined> {
    const s = this.sessions.get(id);
    if (!s) return undefined;
    s.candidates = [request.qosReference, ...(request.altQosReferences ?? [])].filter((r): r is string => r !== undefined);
    s.appliedQosRef = s.candidates[0];
    s.guaranteed = true;
    await this.sessionChanged({ op: 'upsert', id, ue: this.ue(request.ue).view, candidates: s.candidates });
    return this.sessionView(s);
  }

  async deleteQosSession(id: string): Promise<boolean> {
    if (!this.sessions.delete(id)) return false;
    await this.sessionChanged({ op: 'delete', id });
    return true;
  }

  async restoreQosSession(id: string, request: QosSessionRequest): Promise<void> {
    if (this.sessions.has(id)) return;
    const ue = this.ue(request.ue);
    const candidates = [request.qosReference, ...(request.altQosReferences ?? [])].filter((r): r is string => r !== undefined);
    this.sessions.set(id, { id, ueHandle: ue.view.handle, appliedQosRef: candidates[0], candidates, guaranteed: true });
  }

  /** Calls back with every session change made through this adapter (not with mirrored ones). */
  onSessionChange(listener: QosSessionListener): () => void {
    this.sessionListeners.add(listener);
    return () => this.sessionListeners.delete(listener);
  }

  private async sessionChanged(change: QosSessionChange): Promise<void> {
    for (const l of [...this.sessionListeners]) await l(change);
  }

  /**
   * Applies a change another replica's copy of this network made, without emitting it again:
   * the state moves to what the event says (unknown UEs, cells and sessions are ignored). A
   * capability event is no state of this network: ignored.
   */
  mirror(event: NetworkEvent): void {
    if (event.kind === 'capability') return;
    if (event.kind === 'qos') {
      const s = this.sessions.get(event.sessionId);
      if (!s || event.event === 'SESSION_TERMINATION') return;
      s.guaranteed = event.event === 'QOS_GUARANTEED';
      s.appliedQosRef = event.appliedQosRef;
      return;
    }
    const ue = this.byHandle.get(event.ue.handle);
    if (!ue) return;
    if (event.kind === 'location') {
      const cell = this.cells.findIndex(c => c.cellId === event.location.cellId && c.tac === event.location.tac);
      if (cell < 0) return;
      ue.cell = cell;
      ue.locatedAtMs = event.location.observedAtMs;
    } else if (event.kind === 'reachability') {
      ue.reachable = event.reachable;
      ue.reachabilityChangedAtMs = event.atMs;
    } else {
      ue.roaming = event.roaming.roaming;
      ue.roamingChangedAtMs = event.roaming.changedAtMs;
    }
  }

  /** Applies another replica's session change, without calling the session listeners. */
  mirrorSession(change: QosSessionChange): void {
    if (change.op === 'delete') {
      this.sessions.delete(change.id);
      return;
    }
    const ue = this.ue(change.ue);
    const candidates = [...change.candidates];
    this.sessions.set(change.id, { id: change.id, ueHandle: ue.view.handle, appliedQosRef: candidates[0], candidates, guaranteed: true });
  }

  private sessionView(s: SimSession): QosSession {
    return { id: s.id, ueHandle: s.ueHandle, appliedQosRef: s.appliedQosRef, guaranteed: s.guaranteed };
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
    await Promise.all([...this.emitting]);
  }
}
