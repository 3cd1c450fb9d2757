import type { components } from '@aese/t8-openapi/cp-provisioning';

type CpParameterSet = components['schemas']['CpParameterSet'];
type CpReport = components['schemas']['CpReport'];
/** The CpFailureCodes the simulated HSS answers. */
export type CpFailure = 'SET_ID_DUPLICATED' | 'OTHER_REASON' | 'CONFIDENCE_LEVEL_NOT_SUFFICIENT' | 'ACCURACY_LEVEL_NOT_SUFFICIENT';

/** What the simulated HSS accepts. */
export interface HssSettings {
  /** Shortest and longest periodic time it can tune the UE's timers (PSM, eDRX) to, in seconds. */
  readonly minPeriodicTimeS: number;
  readonly maxPeriodicTimeS: number;
  /** Lowest confidence and accuracy of expected UE behaviour it will act upon. */
  readonly minConfidence: number;
  readonly minAccuracy: number;
}

export const DEFAULT_HSS_SETTINGS: HssSettings = { minPeriodicTimeS: 60, maxPeriodicTimeS: 365 * 24 * 3600, minConfidence: 0.5, minAccuracy: 0.5 };

/** The values of the enumerations this HSS understands; anything else (the files allow any string) it cannot apply. */
const KNOWN: Readonly<Record<string, ReadonlySet<string>>> = {
  periodicCommunicationIndicator: new Set(['PERIODICALLY', 'ON_DEMAND']),
  stationaryIndication: new Set(['STATIONARY', 'MOBILE']),
  trafficProfile: new Set(['SINGLE_TRANS_UL', 'SINGLE_TRANS_DL', 'DUAL_TRANS_UL_FIRST', 'DUAL_TRANS_DL_FIRST', 'MULTI_TRANS']),
  scheduledCommunicationType: new Set(['DOWNLINK', 'UPLINK', 'BIDIRECTIONAL']),
  batteryInds: new Set(['BATTERY_RECHARGE', 'BATTERY_REPLACE', 'BATTERY_NO_RECHARGE', 'BATTERY_NO_REPLACE', 'NO_BATTERY']),
};
/** Members that are no CP parameter: a set with nothing else provisions nothing. */
const NOT_PARAMETERS: ReadonlySet<string> = new Set(['setId', 'self', 'validityTime']);

/** What the HSS did with a subscription's CP parameter sets. */
export interface CpOutcome {
  /** The sets the subscription holds now, each with its `self` link. */
  readonly provisioned: Record<string, CpParameterSet>;
  /** Refused sets, one report per failure code. */
  readonly reports: CpReport[];
  /** How many sets of the request were refused. */
  readonly refused: number;
}

/**
 * The HSS (SCEF–HSS over S6t) of the simulated network as CP parameter provisioning sees it: it
 * stores a UE's sets by AS and set id, one set id per AS and UE, and refuses sets whose values it
 * cannot apply.
 * Its store is the SCEF's subscriptions (the sets they hold are exactly what it accepted), so every
 * replica answers alike and nothing is kept in memory.
 */
export class SimulatedCpHss {
  constructor(
    private readonly now: () => number,
    readonly settings: HssSettings = DEFAULT_HSS_SETTINGS,
  ) {}

  /** Why the HSS refuses a set, or undefined when it stores it. `taken`: the set ids the UE(s) already have from the same AS. */
  refusal(set: CpParameterSet, taken: ReadonlySet<string>): CpFailure | undefined {
    if (taken.has(set.setId)) return 'SET_ID_DUPLICATED';
    if (!this.applicable(set)) return 'OTHER_REASON';
    const levels = [set, ...(set.appExpUeBehvs ?? [])];
    if (levels.some(l => l.confidenceLevel !== undefined && Number(l.confidenceLevel) < this.settings.minConfidence)) return 'CONFIDENCE_LEVEL_NOT_SUFFICIENT';
    if (levels.some(l => l.accuracyLevel !== undefined && Number(l.accuracyLevel) < this.settings.minAccuracy)) return 'ACCURACY_LEVEL_NOT_SUFFICIENT';
    return undefined;
  }

  /** Whether the set's values make one communication pattern the network can apply (TS 23.682 table 5.10.1-1). */
  private applicable(set: CpParameterSet): boolean {
    if (Object.keys(set).every(m => NOT_PARAMETERS.has(m))) return false;
    for (const [member, known] of Object.entries(KNOWN)) {
      const v = (set as Record<string, unknown>)[member];
      const values = Array.isArray(v) ? v : v === undefined ? [] : [v];
      if (values.some(x => !known.has(x as string))) return false;
    }
    const periodic = set.periodicCommunicationIndicator === 'PERIODICALLY';
    const { periodicTime, communicationDurationTime } = set;
    // A period belongs to periodic communication only, and periodic communication needs one.
    if (periodic !== (periodicTime !== undefined)) return false;
    if (periodicTime !== undefined && (periodicTime < this.settings.minPeriodicTimeS || periodicTime > this.settings.maxPeriodicTimeS)) return false;
    if (periodicTime !== undefined && communicationDurationTime !== undefined && communicationDurationTime > periodicTime) return false;
    const window = set.scheduledCommunicationTime;
    if (window?.timeOfDayStart !== undefined && window.timeOfDayStart === window.timeOfDayEnd) return false;
    if (set.validityTime !== undefined && Date.parse(set.validityTime) <= this.now()) return false;
    return true;
  }

  /**
   * Provisions a subscription's sets, replacing `current` (its sets so far). Set ids are unique per
   * AS and UE: a second set with the same id in one request is a duplicate too. A refused set that was
   * provisioned before keeps its values: the HSS refused the change, not the set.
   */
  provision(
    request: Readonly<Record<string, CpParameterSet>>,
    current: Readonly<Record<string, CpParameterSet>>,
    taken: ReadonlySet<string>,
    selfOf: (setId: string) => string,
  ): CpOutcome {
    const before = new Map(Object.values(current).map(set => [set.setId, set]));
    const seen = new Set(taken);
    const provisioned: Record<string, CpParameterSet> = {};
    const refused = new Map<CpFailure, string[]>();
    let count = 0;
    for (const [key, set] of Object.entries(request)) {
      const failure = this.refusal(set, seen);
      seen.add(set.setId);
      if (failure) {
        count++;
        refused.set(failure, [...(refused.get(failure) ?? []), set.setId]);
        const old = before.get(set.setId);
        if (old && failure !== 'SET_ID_DUPLICATED') provisioned[key] = old;
        continue;
      }
      provisioned[key] = { ...set, self: selfOf(set.setId) };
    }
    return { provisioned, reports: [...refused].map(([failureCode, setIds]) => ({ setIds, failureCode })), refused: count };
  }
}
