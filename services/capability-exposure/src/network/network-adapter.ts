import type { NetworkEvents } from './capabilities/events.js';
import type { QosSessions } from './capabilities/qos-sessions.js';
import type { UeDirectory } from './capabilities/ue-directory.js';
import type { UeMonitoring } from './capabilities/ue-monitoring.js';

export type { CapabilityEvent, CapabilityEventInput, NetworkChange, NetworkEvent, NetworkEvents, NetworkListener } from './capabilities/events.js';
export type { QosEvent, QosSession, QosSessionRequest, QosSessions } from './capabilities/qos-sessions.js';
export { QOS_EVENTS } from './capabilities/qos-sessions.js';
export type { NetworkIdentities, UeDirectory, UeRef, UeView } from './capabilities/ue-directory.js';
export type { Plmn, RadioAccess, UeLocation, UeMonitoring, UeReachability, UeRoaming } from './capabilities/ue-monitoring.js';

/**
 * What the capability-exposure modules need from the mobile network, one capability interface per
 * file in capabilities/. The embedded default is the simulated core ({@link SimulatedCore}); a
 * real deployment puts an adapter to the HSS/UDM, MME/AMF, PCRF/PCF behind the same interface. No
 * method returns an IMSI/SUPI: the permanent subscriber identity stays inside the adapter.
 *
 * A new T8 API brings its own capability interface and simulation in its module folder and
 * reaches the network through `emit` (its events then come back to the modules like the core's),
 * so this interface does not grow.
 */
export interface NetworkAdapter extends UeDirectory, UeMonitoring, QosSessions, NetworkEvents {
  /** Stops timers; pending listener work is awaited. */
  stop(): Promise<void>;
}
