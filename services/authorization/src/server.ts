import type { Env } from '@aese/config';
import type { Logger } from '@aese/logger';
import { PROTO_FILES } from '@aese/protos';
import { AuthorizationServiceService } from '@aese/protos/authorization/v1';
import { MESH_ENDPOINTS, startPendingService } from '@aese/runtime';

/** Starts the authorization service (contract served; decisions arrive with the T8 request path). */
export function startAuthorizationService(env: Env, logger: Logger) {
  return startPendingService(
    'authorization',
    {
      definition: AuthorizationServiceService,
      protoFile: PROTO_FILES.authorization,
      serviceName: 'aese.authorization.v1.AuthorizationService',
      defaultPort: MESH_ENDPOINTS['authorization'].port,
    },
    env,
    logger,
  );
}
