/**
 * Where a deployment's NATS is and how operator tools reach it. `npm start` runs a private
 * nats-server under the state folder and records its URL there; the CLI reads that record, so
 * it talks to the running stack's NATS without being told, and never to another deployment's.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { AeseError } from '@aese/errors';
import { connectNats } from '@aese/nats';
import type { NatsConnection } from '@aese/nats';
import { renderNatsServerConfig } from '@aese/nats-trust';
import { createLogger } from '@aese/logger';
import { OPERATOR_NAME, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, pkiLayout, readMeshTlsMaterial } from '@aese/pki';
import type { PkiLayout } from '@aese/pki';
import { natsInboxPrefix } from '@aese/nats-trust';

/** The NATS files of a state folder. */
export interface NatsStatePaths {
  /** `<state>/nats` */
  readonly dir: string;
  /** The private server's configuration (npm start). */
  readonly config: string;
  /** The private server's JetStream store. */
  readonly store: string;
  /** The configuration for the compose NATS container (paths inside the container). */
  readonly composeConfig: string;
  /** One configuration per node of a three-node NATS cluster (`nats-0` ... `nats-2`, container paths). */
  readonly clusterConfigs: readonly string[];
  /** The running stack's record: which NATS it uses. Present only while `npm start` runs. */
  readonly stackRecord: string;
}

export function natsStatePaths(stateDir: string): NatsStatePaths {
  const dir = join(resolve(stateDir), 'nats');
  return {
    dir,
    config: join(dir, 'nats.conf'),
    store: join(dir, 'jetstream'),
    composeConfig: join(dir, 'compose.conf'),
    clusterConfigs: CLUSTER_NODES.map(node => join(dir, 'cluster', `${node}.conf`)),
    stackRecord: join(resolve(stateDir), 'stack.json'),
  };
}

/** The nodes of the three-node cluster; their names are DNS names in the NATS server certificate. */
export const CLUSTER_NODES = ['nats-0', 'nats-1', 'nats-2'] as const;
/** The port cluster nodes route to each other on (mutual TLS with the NATS server certificate). */
export const CLUSTER_ROUTE_PORT = 6222;

/** Where the compose NATS container finds its certificate, key and the mesh CA. */
export const COMPOSE_NATS_TLS = {
  certFile: '/etc/nats/tls/nats-server.crt',
  keyFile: '/etc/nats/tls/nats-server.key',
  caFile: '/etc/nats/tls/mesh-ca.crt',
} as const;

/** Writes the private nats-server's configuration (npm start) for a loopback port. */
export function writePrivateNatsConfig(layout: PkiLayout, trustDomain: string, port: number): NatsStatePaths {
  const paths = natsStatePaths(layout.stateDir);
  mkdirSync(paths.dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  writeFileSync(
    paths.config,
    renderNatsServerConfig({
      trustDomain,
      serverName: 'aese-private',
      host: '127.0.0.1',
      port,
      storeDir: paths.store,
      tls: { certFile: layout.natsServer.cert, keyFile: layout.natsServer.key, caFile: layout.meshCa.cert },
    }),
    { mode: PRIVATE_FILE_MODE },
  );
  return paths;
}

/**
 * Writes the configurations of the container deployments, all with the same trust model: the
 * compose NATS, and each node of a three-node cluster (JetStream replicas 3, NATS_REPLICAS=3).
 * Paths are inside the container: the certificate, key and mesh CA under /etc/nats/tls.
 */
export function writeDeploymentNatsConfigs(layout: PkiLayout, trustDomain: string): NatsStatePaths {
  const paths = natsStatePaths(layout.stateDir);
  mkdirSync(paths.dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  writeFileSync(
    paths.composeConfig,
    renderNatsServerConfig({
      trustDomain,
      serverName: 'aese-nats',
      host: '0.0.0.0',
      port: 4222,
      storeDir: '/data/jetstream',
      monitor: { host: '127.0.0.1', port: 8222 },
      tls: COMPOSE_NATS_TLS,
    }),
    { mode: 0o644 },
  );
  mkdirSync(join(paths.dir, 'cluster'), { recursive: true, mode: PRIVATE_DIR_MODE });
  CLUSTER_NODES.forEach((node, i) => {
    writeFileSync(
      paths.clusterConfigs[i],
      renderNatsServerConfig({
        trustDomain,
        serverName: node,
        host: '0.0.0.0',
        port: 4222,
        storeDir: '/data/jetstream',
        monitor: { host: '127.0.0.1', port: 8222 },
        tls: COMPOSE_NATS_TLS,
        cluster: { name: 'aese', host: '0.0.0.0', port: CLUSTER_ROUTE_PORT, routes: CLUSTER_NODES.map(n => `tls://${n}:${CLUSTER_ROUTE_PORT}`) },
      }),
      { mode: 0o644 },
    );
  });
  return paths;
}

/** What `npm start` records about the running stack. */
export interface StackRecord {
  readonly natsUrl: string;
  readonly pid: number;
  readonly startedAt: string;
  /** host:port of each service by its address variable (`AUTHENTICATION_ADDR`, ...). */
  readonly addresses?: Readonly<Record<string, string>>;
  /** The edge's URL as ASes reach it (the issuer). */
  readonly edgeUrl?: string;
}

export function writeStackRecord(stateDir: string, record: StackRecord): void {
  writeFileSync(natsStatePaths(stateDir).stackRecord, `${JSON.stringify(record, null, 2)}\n`, { mode: 0o644 });
}

export function removeStackRecord(stateDir: string): void {
  rmSync(natsStatePaths(stateDir).stackRecord, { force: true });
}

/** The running stack's record, when a live `npm start` wrote one for this state folder. */
export function readStackRecord(stateDir: string): StackRecord | undefined {
  const path = natsStatePaths(stateDir).stackRecord;
  if (!existsSync(path)) return undefined;
  try {
    const record = JSON.parse(readFileSync(path, 'utf8')) as StackRecord;
    process.kill(record.pid, 0);
    return record;
  } catch {
    return undefined;
  }
}

/**
 * The NATS the CLI uses: `NATS_URL` when set, else the one the running stack of this state
 * folder recorded. Fails with a clear message when neither exists.
 */
export function cliNatsUrl(stateDir: string, natsUrl: string | undefined): string {
  if (natsUrl) return natsUrl;
  const record = readStackRecord(stateDir);
  if (!record) {
    throw new AeseError('UNAVAILABLE', `no running stack for the state folder ${resolve(stateDir)}: start it with npm start, or set NATS_URL`);
  }
  return record.natsUrl;
}

/** Connects as the operator identity (mesh certificate), with the operator's own inbox. */
export async function connectOperatorNats(stateDir: string, natsUrl: string, caFile?: string): Promise<NatsConnection> {
  const tls = readMeshTlsMaterial(pkiLayout(stateDir), OPERATOR_NAME);
  return connectNats({
    servers: natsUrl,
    name: 'aese-cli',
    logger: createLogger({ service: 'aese-cli', level: 'silent' }),
    connectTimeoutMs: 5_000,
    tls: { ...tls, caPem: caFile ? readFileSync(caFile, 'utf8') : tls.caPem },
    inboxPrefix: natsInboxPrefix(OPERATOR_NAME),
  });
}
