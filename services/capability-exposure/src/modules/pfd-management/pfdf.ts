import type { components } from '@aese/t8-openapi/pfd-management';
import type { NetworkAdapter } from '../../network/network-adapter.js';

type PfdData = components['schemas']['PfdData'];
type PfdReport = components['schemas']['PfdReport'];
type FailureCode = 'APP_ID_DUPLICATED' | 'SHORT_DELAY' | 'RESOURCE_LIMITATION';

/** The capability event type of a finished distribution of PFDs to the user plane. */
export const PFD_DISTRIBUTION_EVENT = 'pfd-distribution';

/** A user plane function the PFDF distributes PFDs to, by its DNAI. */
export interface UserPlane {
  readonly dnai: string;
  /**
   * Whether it can match domain names in server certificates (TLS_SAN, TSL_SCN): with TLS 1.3 the
   * certificate is encrypted, and only a UPF that terminates TLS can read it.
   */
  readonly inspectsCertificates: boolean;
}

/** How the simulated PFDF behaves. */
export interface PfdfSettings {
  /** Shortest allowedDelay it can honour: PFDs reach every UPF only this long after they are stored. */
  readonly minAllowedDelayS: number;
  /** Most PFDs it stores for one application. */
  readonly maxPfdsPerApplication: number;
  /** How long the distribution to the user plane takes here (a short stand-in for minutes). */
  readonly distributionMs: number;
  readonly userPlanes: readonly UserPlane[];
}

export const DEFAULT_PFDF_SETTINGS: PfdfSettings = {
  minAllowedDelayS: 30,
  maxPfdsPerApplication: 16,
  distributionMs: 300,
  userPlanes: [
    { dnai: 'dnai-central', inspectsCertificates: true },
    { dnai: 'dnai-edge-1', inspectsCertificates: false },
    { dnai: 'dnai-edge-2', inspectsCertificates: false },
  ],
};

/** What the PFDF did with a transaction's applications. */
export interface PfdOutcome {
  /** The applications the transaction holds now, each with its `self` link. */
  readonly provisioned: Record<string, PfdData>;
  /** Refused applications, one report per failure code. */
  readonly reports: PfdReport[];
  /** Applications whose PFDs changed: they go out to the user plane. */
  readonly changed: string[];
}

const CERTIFICATE_PROTOCOLS: ReadonlySet<string> = new Set(['TLS_SAN', 'TSL_SCN']);

/**
 * The Packet Flow Description Function of the simulated network: it stores the PFDs of external
 * application ids (one application in one transaction network-wide) and pushes them to the user
 * plane functions, some of which cannot enforce every PFD. Its store is the SCEF's transactions
 * (what the PFDF accepted is exactly what they hold), so every replica sees the same PFDF; only
 * the pending distributions are this replica's.
 */
export class SimulatedPfdf {
  private readonly timers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly network: NetworkAdapter,
    private readonly api: string,
    readonly settings: PfdfSettings = DEFAULT_PFDF_SETTINGS,
  ) {}

  /** Why the PFDF refuses one application, or undefined when it stores it. */
  refusal(data: PfdData, provisionedElsewhere: ReadonlySet<string>): FailureCode | undefined {
    if (provisionedElsewhere.has(data.externalAppId)) return 'APP_ID_DUPLICATED';
    if (typeof data.allowedDelay === 'number' && data.allowedDelay < this.settings.minAllowedDelayS) return 'SHORT_DELAY';
    if (Object.keys(data.pfds).length > this.settings.maxPfdsPerApplication) return 'RESOURCE_LIMITATION';
    return undefined;
  }

  /**
   * Provisions a transaction's applications, replacing `current` (its applications so far). A
   * refused application that was provisioned before keeps its PFDs: the PFDF refused the change,
   * not the application. Applications no longer listed are removed.
   */
  provision(request: Readonly<Record<string, PfdData>>, current: Readonly<Record<string, PfdData>>, elsewhere: ReadonlySet<string>, selfOf: (appId: string) => string): PfdOutcome {
    const provisioned: Record<string, PfdData> = {};
    const refused = new Map<FailureCode, string[]>();
    const changed: string[] = [];
    for (const [appId, data] of Object.entries(request)) {
      const failure = this.refusal(data, elsewhere);
      if (failure) {
        refused.set(failure, [...(refused.get(failure) ?? []), appId]);
        if (current[appId]) provisioned[appId] = current[appId];
        continue;
      }
      provisioned[appId] = { ...data, self: selfOf(appId) };
      if (JSON.stringify(provisioned[appId]) !== JSON.stringify(current[appId])) changed.push(appId);
    }
    const reports = [...refused].map(([failureCode, externalAppIds]): PfdReport => ({ externalAppIds, failureCode }));
    return { provisioned, reports, changed };
  }

  /** The DNAIs of the user plane functions that cannot enforce every PFD of an application. */
  unenforcedAt(data: PfdData): string[] {
    const needsCertificates = Object.values(data.pfds).some(p => p.dnProtocol !== undefined && CERTIFICATE_PROTOCOLS.has(p.dnProtocol));
    return needsCertificates ? this.settings.userPlanes.filter(u => !u.inspectsCertificates).map(u => u.dnai) : [];
  }

  /**
   * Pushes changed applications to the user plane; once done, the network reports it (a capability
   * event), and whichever replica handles the event tells the AS what could not be enforced.
   */
  distribute(scsAsId: string, transactionId: string, externalAppIds: readonly string[]): void {
    if (externalAppIds.length === 0) return;
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      // A report lost here costs only the PARTIAL_FAILURE notification; the PFDs stay provisioned.
      this.network.emit({ capability: this.api, type: PFD_DISTRIBUTION_EVENT, payload: { scsAsId, transactionId, externalAppIds: [...externalAppIds] } }).catch(() => undefined);
    }, this.settings.distributionMs);
    this.timers.add(timer);
  }

  stop(): void {
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
  }
}
