import type { UeView } from './ue-directory.js';

/** QoS sessions the network holds for an AS (AsSessionWithQoS). */
export interface QosSessions {
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
