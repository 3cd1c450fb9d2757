import { loadPackageDefinition } from '@grpc/grpc-js';
import type { Client } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';
import { createMeshClient } from './mesh-client.js';
import type { ClientCtor, MeshClientOptions } from './mesh-client.js';

/** A grpc.health.v1 client over the mesh's pinned mTLS, to see whether a mesh service is SERVING. */
export interface MeshHealthClient {
  /** The server's overall status (`SERVING`, `NOT_SERVING`, ...); fails when it cannot be reached. */
  check(): Promise<string>;
  close(): void;
}

let healthCtor: ClientCtor<Client> | undefined;

/** Creates a health client for one mesh service (same pinning and deadlines as every mesh client). */
export function createMeshHealthClient(options: MeshClientOptions): MeshHealthClient {
  healthCtor ??= (() => {
    const def = loadPackageDefinition(loadSync(HEALTH_PROTO_PATH, { keepCase: true, enums: String })) as unknown as {
      grpc: { health: { v1: { Health: ClientCtor<Client> } } };
    };
    return def.grpc.health.v1.Health;
  })();
  const client = createMeshClient(healthCtor, options) as unknown as {
    Check(req: { service: string }): Promise<{ status: string }>;
    close(): void;
  };
  return {
    check: async () => (await client.Check({ service: '' })).status,
    close: () => client.close(),
  };
}
