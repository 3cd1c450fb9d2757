import type { Env } from '@aese/config';
import type { Logger } from '@aese/logger';
import { PROTO_FILES } from '@aese/protos';
import { CapabilityExposureServiceService } from '@aese/protos/capability-exposure/v1';
import { MESH_ENDPOINTS, startPendingService } from '@aese/runtime';

/** Starts the capability-exposure service (contract served; decisions arrive with the T8 request path). */
export function startCapabilityExposureService(env: Env, logger: Logger) {
  return startPendingService(
    'capability-exposure',
    {
      definition: CapabilityExposureServiceService,
      protoFile: PROTO_FILES.capabilityExposure,
      serviceName: 'aese.capability_exposure.v1.CapabilityExposureService',
      defaultPort: MESH_ENDPOINTS['capability-exposure'].port,
    },
    env,
    logger,
  );
}
