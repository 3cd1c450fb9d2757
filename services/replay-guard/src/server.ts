import type { Env } from '@aese/config';
import type { Logger } from '@aese/logger';
import { PROTO_FILES } from '@aese/protos';
import { ReplayGuardServiceService } from '@aese/protos/replay-guard/v1';
import { MESH_ENDPOINTS, startPendingService } from '@aese/runtime';

/** Starts the replay-guard service (contract served; decisions arrive with the T8 request path). */
export function startReplayGuardService(env: Env, logger: Logger) {
  return startPendingService(
    'replay-guard',
    {
      definition: ReplayGuardServiceService,
      protoFile: PROTO_FILES.replayGuard,
      serviceName: 'aese.replay_guard.v1.ReplayGuardService',
      defaultPort: MESH_ENDPOINTS['replay-guard'].port,
    },
    env,
    logger,
  );
}
