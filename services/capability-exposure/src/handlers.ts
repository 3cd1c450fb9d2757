import { AeseError } from '@aese/errors';
import type { HandlersOf } from '@aese/grpc-server';
import type { Logger } from '@aese/logger';
import type { CapabilityExposureServiceService } from '@aese/protos/capability-exposure/v1';
import type { Invoker } from './domain/invoke.js';
import type { ModuleRegistry } from './modules/registry.js';
import type { NetworkAdapter } from './network/network-adapter.js';

type Handlers = HandlersOf<typeof CapabilityExposureServiceService>;

/** Bounds on what the edge may hand over; a T8 request beyond them is an edge bug. */
const MAX_PATH_CHARS = 4096;
const MAX_SCOPES = 64;
const MAX_FIELD_CHARS = 1024;

/** Proto <-> domain for the capability-exposure service. */
export function capabilityExposureHandlers(registry: ModuleRegistry, invoker: Invoker, logger: Logger, network: NetworkAdapter): Handlers {
  return {
    listNetworkIdentities: async () => {
      const ids = await network.listIdentities();
      return {
        ues: ids.ues.map(u => ({ externalId: u.externalId, msisdn: u.msisdn, ipv4Addr: u.ipv4Addr, ipv6Addr: u.ipv6Addr, groups: [...u.groups] })),
        groups: ids.groups.map(g => ({ externalGroupId: g.externalGroupId, memberCount: g.memberCount })),
      };
    },
    listApis: async () => ({
      apis: registry.list().map(m => ({
        name: m.name,
        version: m.version,
        scope: m.scope,
        routes: m.routes.map(r => ({ method: r.method, path: r.path, operation: r.operation })),
        dataCategories: [...m.dataCategories],
      })),
    }),
    invoke: async req => {
      if (req.path.length === 0 || req.path.length > MAX_PATH_CHARS) throw new AeseError('INVALID_INPUT', `path must be 1..${MAX_PATH_CHARS} characters`);
      if (req.method.length === 0 || req.method.length > 16) throw new AeseError('INVALID_INPUT', 'method is required');
      if (req.scopes.length > MAX_SCOPES) throw new AeseError('INVALID_INPUT', `at most ${MAX_SCOPES} scopes`);
      if (req.contentType.length > MAX_FIELD_CHARS || req.apiRoot.length > MAX_FIELD_CHARS) throw new AeseError('INVALID_INPUT', 'content_type or api_root too long');
      const out = await invoker.invoke({
        scsAsId: req.scsAsId,
        method: req.method,
        path: req.path,
        contentType: req.contentType,
        body: req.body,
        scopes: req.scopes,
        apiRoot: req.apiRoot,
      });
      // Paths, queries and bodies are never logged: they can carry UE identifiers.
      logger.info({ scsAsId: req.scsAsId, api: out.api, operation: out.operation, status: out.status }, 't8 invoke');
      return {
        status: out.status,
        headers: { ...out.headers },
        body: Buffer.from(out.body),
        obligations: out.obligations.map(o => ({ type: o.type, parameters: { ...o.parameters } })),
        dataCategories: [...out.dataCategories],
        reusable: out.reusable,
      };
    },
  };
}
