/**
 * Health probe of one service, for container health checks (built to dist/health-probe/):
 *
 *   node dist/health-probe.mjs <service>
 *
 * A mesh service is asked for its gRPC health over mTLS with its own certificate (the mesh CA
 * pins the server's SPIFFE ID), on localhost:$PORT; the edge, which has no gRPC server, is healthy
 * when its port listens (the kernel's socket table, so it logs no probe). Exit status 0 only when
 * SERVING (or listening), 1 otherwise, with one line saying what was seen.
 */
import { loadConfig } from '@aese/config';
import { createMeshHealthClient } from '@aese/grpc-client/health';
import { DEFAULT_EDGE_PORT, COMMON_SETTINGS, MESH_ENDPOINTS, portSetting, serviceId, serviceTls } from '@aese/runtime';
import { listensInKernelTable } from '@aese/cli';

/** A probe that hangs is a failed probe: the orchestrator's own timeout is usually longer. */
const DEADLINE_MS = 3_000;

async function probe(service: string | undefined): Promise<string> {
  if (service === 'edge') {
    const { port } = loadConfig({ port: portSetting(DEFAULT_EDGE_PORT) }, process.env);
    return listensInKernelTable(port) ? 'SERVING' : `NOT_LISTENING on port ${port}`;
  }
  if (!service || !(service in MESH_ENDPOINTS)) {
    throw new Error(`usage: health-probe <service>, one of ${[...Object.keys(MESH_ENDPOINTS), 'edge'].join(', ')}`);
  }
  const name = service as keyof typeof MESH_ENDPOINTS;
  const config = loadConfig({ stateDir: COMMON_SETTINGS.stateDir, trustDomain: COMMON_SETTINGS.trustDomain, port: portSetting(MESH_ENDPOINTS[name].port) }, process.env);
  const health = createMeshHealthClient({
    address: `localhost:${config.port}`,
    tls: serviceTls(config.stateDir, name),
    serverId: serviceId(config.trustDomain, name),
    deadlineMs: DEADLINE_MS,
  });
  try {
    return await health.check();
  } finally {
    health.close();
  }
}

const service = process.argv[2];
probe(service).then(
  status => {
    process.stdout.write(`${service}: ${status}\n`);
    process.exit(status === 'SERVING' ? 0 : 1);
  },
  (err: unknown) => {
    process.stdout.write(`${service ?? 'health-probe'}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
    process.exit(1);
  },
);
