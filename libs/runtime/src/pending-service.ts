import { AeseError } from '@aese/errors';
import { createMeshServer, mount } from '@aese/grpc-server';
import type { UnaryHandler } from '@aese/grpc-server';
import type { ServiceDefinition } from '@grpc/grpc-js';
import type { Logger } from '@aese/logger';
import type { Env } from '@aese/config';
import { loadCommonConfig, portSetting, serviceId, serviceTls } from './index.js';
import type { MeshServiceName, Stoppable } from './index.js';
import { loadConfig } from '@aese/config';

/**
 * Serves a service whose contract is published but whose decisions are not built yet: health,
 * reflection and mTLS work, and every RPC fails closed with UNIMPLEMENTED, so no caller can
 * mistake it for an answer.
 */
export async function startPendingService(
  name: MeshServiceName,
  spec: { definition: ServiceDefinition; protoFile: string; serviceName: string; defaultPort: number },
  env: Env,
  logger: Logger,
): Promise<Stoppable & { port: number }> {
  const common = loadCommonConfig(env);
  const { port: wanted } = loadConfig({ port: portSetting(spec.defaultPort) }, env);
  const refuse: UnaryHandler<unknown, unknown> = async () => {
    throw new AeseError('NOT_IMPLEMENTED', `${spec.serviceName} does not decide anything yet; the call is refused`);
  };
  const handlers = Object.fromEntries(Object.keys(spec.definition).map(m => [m, refuse]));
  const allowed = Object.fromEntries(Object.keys(spec.definition).map(m => [m, [serviceId(common.trustDomain, 'edge')]]));
  const server = createMeshServer({
    name,
    tls: serviceTls(common.stateDir, name),
    logger,
    protoFiles: [spec.protoFile],
    serviceNames: [spec.serviceName],
    services: [mount({ definition: spec.definition, handlers: handlers as never, allowedCallers: allowed as never })],
  });
  const port = await server.listen(common.listenHost, wanted);
  server.setServing(true);
  logger.info({ port }, `${name} serving`);
  return { port, stop: () => server.shutdown() };
}
