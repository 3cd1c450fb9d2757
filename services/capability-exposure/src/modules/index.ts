import { asSessionWithQosModule } from './as-session-with-qos/index.js';
import { chargeablePartyModule } from './chargeable-party/index.js';
import { monitoringEventModule } from './monitoring-event/index.js';
import type { ModuleDefinition } from './registry.js';

/**
 * The T8 API modules this service serves. A new API is a new folder under modules/ and one line
 * here; neither the Invoke pipeline nor the edge changes.
 */
export const BUILTIN_MODULES: readonly ModuleDefinition[] = [monitoringEventModule, asSessionWithQosModule, chargeablePartyModule];
