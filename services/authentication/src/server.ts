import type { JWK } from 'jose';
import { int, loadConfig, str } from '@aese/config';
import type { Env } from '@aese/config';
import { createMeshClient } from '@aese/grpc-client';
import { createMeshServer, mount } from '@aese/grpc-server';
import type { Logger } from '@aese/logger';
import { connectNats } from '@aese/nats';
import { OPERATOR_NAME, spiffeId } from '@aese/pki';
import { PROTO_FILES } from '@aese/protos';
import { AuthenticationServiceService } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient, KeyStatus } from '@aese/protos/crypto/v1';
import { DEFAULT_EDGE_PORT, loadCommonConfig, MESH_ENDPOINTS, portSetting, serviceId, serviceTls } from '@aese/runtime';
import type { Stoppable } from '@aese/runtime';
import { Registry } from './domain/registry.js';
import { MAX_TOKEN_LIFETIME_S, TokenService } from './domain/tokens.js';
import { authenticationHandlers } from './handlers.js';
import { KvRegistryStore } from './kv-registry-store.js';

/** Token lifetime when none is configured: well under the 10-minute ceiling. */
export const DEFAULT_TOKEN_LIFETIME_S = 300;

export const AUTHENTICATION_SETTINGS = {
  port: portSetting(MESH_ENDPOINTS.authentication.port),
  issuer: str('AESE_ISSUER', `https://localhost:${DEFAULT_EDGE_PORT}`),
  tokenLifetimeS: int('TOKEN_LIFETIME_S', DEFAULT_TOKEN_LIFETIME_S, 1, MAX_TOKEN_LIFETIME_S),
} as const;

export interface RunningService extends Stoppable {
  readonly port: number;
}

/** Starts the authentication service: AS registry over KV, tokens signed through crypto. */
export async function startAuthenticationService(env: Env, logger: Logger): Promise<RunningService> {
  const common = loadCommonConfig(env);
  const config = loadConfig(AUTHENTICATION_SETTINGS, env);
  const td = common.trustDomain;
  const tls = serviceTls(common.stateDir, 'authentication');
  const crypto = createMeshClient(CryptoServiceClient, {
    address: common.addrCrypto,
    tls,
    serverId: serviceId(td, 'crypto'),
  });
  const nc = await connectNats({ servers: common.natsUrl, name: 'authentication', logger });
  const registry = new Registry(await KvRegistryStore.open(nc));
  const tokens = new TokenService({
    issuer: config.issuer,
    lifetimeS: config.tokenLifetimeS,
    trustDomain: td,
    registry,
    signer: {
      sign: async data => {
        const out = await crypto.sign({ purpose: KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN, data: Buffer.from(data) });
        return { kid: out.kid, alg: out.algorithm === 2 ? 'EdDSA' : 'ES256', signature: out.signature };
      },
    },
    keys: {
      fetch: async () => {
        const { keys } = await crypto.getJwks({});
        return keys
          .filter(k => k.purpose === KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN)
          .sort((a, b) => Number(b.status === KeyStatus.KEY_STATUS_ACTIVE) - Number(a.status === KeyStatus.KEY_STATUS_ACTIVE) || b.createdAtMs - a.createdAtMs)
          .map(k => JSON.parse(k.jwkJson) as JWK);
      },
    },
  });
  const edge = serviceId(td, 'edge');
  const operator = spiffeId(td, 'operator', OPERATOR_NAME);
  const server = createMeshServer({
    name: 'authentication',
    tls,
    logger,
    protoFiles: [PROTO_FILES.authentication],
    serviceNames: ['aese.authentication.v1.AuthenticationService'],
    services: [
      mount({
        definition: AuthenticationServiceService,
        handlers: authenticationHandlers(registry, tokens),
        allowedCallers: {
          resolveClient: [edge],
          issueToken: [edge],
          verifyToken: [edge],
          registerApplicationServer: [operator],
          listApplicationServers: [operator],
          suspendApplicationServer: [operator],
        },
      }),
    ],
  });
  const port = await server.listen(common.listenHost, config.port);
  server.setServing(true);
  logger.info({ port }, 'authentication service serving');
  return {
    port,
    stop: async () => {
      await server.shutdown();
      crypto.close();
      await nc.drain();
    },
  };
}
