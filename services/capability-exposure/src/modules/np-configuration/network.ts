import type { NetworkAdapter, UeView } from '../../network/network-adapter.js';
import type { ParameterValues } from './parameters.js';

/** The API whose capability events these are. */
export const NP_CONFIGURATION_CAPABILITY = '3gpp-network-parameter-configuration';
/** The capability event: the network answered a configuration (HSS and serving nodes done). */
export const PARAMETERS_APPLIED = 'parameters-applied';
/** How long the HSS and the serving nodes take to answer, unless told otherwise. */
export const DEFAULT_ANSWER_DELAY_MS = 200;

/** One configuration as the network handles it; `revision` tells an answer to an older version apart. */
export interface ConfigurationRef {
  readonly scsAsId: string;
  readonly configurationId: string;
  readonly revision: number;
}

/** What the network did for one UE. */
export type UeResult = { readonly ue: UeView; readonly applied: true } | { readonly ue: UeView; readonly applied: false; readonly reason: 'ROAMING_NOT_ALLOWED' };

/** The values the serving nodes run with (AppliedParameterConfiguration). */
export interface AppliedValues {
  readonly maximumLatency?: number;
  readonly maximumResponseTime?: number;
}

/** What the SCEF asks of the network for NpConfiguration (TS 23.682 clause 5.10: HSS, then MME/SGSN and serving gateway). */
export interface ParameterConfigurationNetwork {
  /**
   * Hands the accepted values for a configuration's UEs to the network. Its answer comes back as
   * a {@link PARAMETERS_APPLIED} capability event naming the configuration, after `holdMs` more
   * (a group's guard time). Returns what takes the request back (a configuration never stored).
   */
  configure(ref: ConfigurationRef, holdMs: number): () => void;
  /** Withdraws a configuration: an answer still to come is not sent. */
  withdraw(scsAsId: string, configurationId: string): void;
  /** What the network applied for each UE, and the values it runs with. */
  results(ues: readonly UeView[], values: ParameterValues): Promise<{ readonly perUe: readonly UeResult[]; readonly applied: AppliedValues }>;
  stop(): void;
}

/** eDRX cycles of E-UTRAN (TS 24.008 table 10.5.5.32: 5.12 s times a power of two), in whole seconds. */
const EDRX_CYCLES_S = [5, 10, 20, 40, 81, 163, 327, 655, 1310, 2621];
/** Or the MME uses power saving, with a periodic update timer in 10 minute steps. */
const PERIODIC_UPDATE_STEP_S = 600;
/** The Active Time timer's units (TS 24.008 GPRS Timer 2): 2 s, 1 min, 6 min, each up to 31 steps. */
const ACTIVE_TIME_UNITS = [
  { step: 2, max: 62 },
  { step: 60, max: 1_860 },
  { step: 360, max: 11_160 },
];

/** The latency the MME can keep within the request: the eDRX cycle or periodic update timer closest below it. */
export function appliedLatency(requested: number): number {
  const edrx = EDRX_CYCLES_S.filter(c => c <= requested).at(-1) ?? EDRX_CYCLES_S[0];
  return Math.max(edrx, Math.floor(requested / PERIODIC_UPDATE_STEP_S) * PERIODIC_UPDATE_STEP_S);
}

/** The response time the MME can give: the longest Active Time the timer encodes, not above the request. */
export function appliedResponseTime(requested: number): number {
  return Math.max(ACTIVE_TIME_UNITS[0].step, ...ACTIVE_TIME_UNITS.map(u => Math.floor(Math.min(requested, u.max) / u.step) * u.step));
}

/**
 * The simulated HSS and serving nodes: a configuration is answered after a short delay, by an
 * event that any replica can turn into the AS's notification. The outcome follows the UE's state:
 * a roaming UE's visited network does not take the parameters (ROAMING_NOT_ALLOWED); a UE at home
 * runs with the nearest values its timers encode ({@link appliedLatency}, {@link appliedResponseTime}).
 */
export class SimulatedParameterConfiguration implements ParameterConfigurationNetwork {
  private readonly pending = new Map<string, NodeJS.Timeout>();

  constructor(
    private readonly network: NetworkAdapter,
    private readonly answerDelayMs = DEFAULT_ANSWER_DELAY_MS,
  ) {}

  configure(ref: ConfigurationRef, holdMs: number): () => void {
    const key = `${ref.scsAsId}\n${ref.configurationId}`;
    this.cancel(key);
    const timer = setTimeout(() => {
      this.pending.delete(key);
      // An answer that cannot be sent is lost like one the HSS never gave; the parameters stay configured.
      this.network.emit({ capability: NP_CONFIGURATION_CAPABILITY, type: PARAMETERS_APPLIED, payload: { ...ref } }).catch(() => undefined);
    }, this.answerDelayMs + holdMs);
    timer.unref();
    this.pending.set(key, timer);
    return () => this.cancel(key);
  }

  withdraw(scsAsId: string, configurationId: string): void {
    this.cancel(`${scsAsId}\n${configurationId}`);
  }

  async results(ues: readonly UeView[], values: ParameterValues): Promise<{ perUe: UeResult[]; applied: AppliedValues }> {
    const perUe: UeResult[] = [];
    for (const ue of ues) perUe.push((await this.network.roaming(ue)).roaming ? { ue, applied: false, reason: 'ROAMING_NOT_ALLOWED' } : { ue, applied: true });
    const applied: { maximumLatency?: number; maximumResponseTime?: number } = {};
    if (values.maximumLatency !== undefined) applied.maximumLatency = appliedLatency(values.maximumLatency);
    if (values.maximumResponseTime !== undefined) applied.maximumResponseTime = appliedResponseTime(values.maximumResponseTime);
    return { perUe, applied };
  }

  stop(): void {
    for (const key of [...this.pending.keys()]) this.cancel(key);
  }

  private cancel(key: string): void {
    clearTimeout(this.pending.get(key));
    this.pending.delete(key);
  }
}
