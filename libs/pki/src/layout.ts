import { join, resolve } from 'node:path';

/**
 * The services of the mesh, each with its own certificate and SPIFFE ID
 * `spiffe://<trust-domain>/svc/<name>`; the per-method caller allow-lists refer to these names.
 */
export const MESH_SERVICES = ['authentication', 'authorization', 'replay-guard', 'crypto', 'capability-exposure', 'edge'] as const;

/** One of {@link MESH_SERVICES}. */
export type MeshService = (typeof MESH_SERVICES)[number];

/** The operator's client identity (`spiffe://<td>/operator/admin`), used by the admin CLI. */
export const OPERATOR_NAME = 'admin';

/** The paths of one certificate and its private key. */
export interface CertKeyPaths {
  readonly cert: string;
  readonly key: string;
}

/**
 * Absolute paths of every file `initPki` creates. Services and tools take paths from here rather
 * than joining strings, so the layout is defined once.
 */
export interface PkiLayout {
  /** The state folder the PKI lives in. */
  readonly stateDir: string;
  /** `<stateDir>/pki`. */
  readonly root: string;
  /** `pki.json`: trust domain and creation time; written last, so it marks a complete PKI. */
  readonly metadata: string;
  /** Mesh CA: signs service and operator certificates. */
  readonly meshCa: CertKeyPaths;
  /** AS CA: signs SCS/AS client certificates only. */
  readonly asCa: CertKeyPaths;
  /** T8 server CA: signs the edge's T8 server certificate; its certificate is given to ASes. */
  readonly t8Ca: CertKeyPaths;
  /** Folder of the service certificates. */
  readonly servicesDir: string;
  /** One certificate per mesh service. */
  readonly services: Readonly<Record<MeshService, CertKeyPaths>>;
  /** Folder of the operator certificate. */
  readonly operatorDir: string;
  /** The operator's client certificate ({@link OPERATOR_NAME}). */
  readonly operator: CertKeyPaths;
  /** The edge's T8 server certificate (signed by the T8 CA). */
  readonly edgeT8: CertKeyPaths;
  /**
   * The SCEF's client certificate for delivering notifications to AS receivers (signed by the
   * T8 CA, clientAuth only), so an AS that trusts `ca.crt` can authenticate the SCEF.
   */
  readonly edgeNotifier: CertKeyPaths;
  /** The NATS server certificate (mesh CA; also presented on cluster routes between nodes). */
  readonly natsServer: CertKeyPaths;
  /**
   * The JetStream administrator (`spiffe://<td>/operator/nats-admin`): repairs, backups, stream
   * deletes. No service and no everyday CLI command uses it.
   */
  readonly natsAdmin: CertKeyPaths;
}

/** The name of the JetStream administrator identity under `operator/`. */
export const NATS_ADMIN_NAME = 'nats-admin';

function pair(dir: string, name: string): CertKeyPaths {
  return { cert: join(dir, `${name}.crt`), key: join(dir, `${name}.key`) };
}

/** The layout of a PKI whose root folder is `root`. @internal */
export function layoutAtRoot(stateDir: string, root: string): PkiLayout {
  const servicesDir = join(root, 'services');
  const operatorDir = join(root, 'operator');
  const services = Object.fromEntries(MESH_SERVICES.map(name => [name, pair(servicesDir, name)])) as Record<MeshService, CertKeyPaths>;
  return {
    stateDir,
    root,
    metadata: join(root, 'pki.json'),
    meshCa: pair(root, 'mesh-ca'),
    asCa: pair(root, 'as-ca'),
    t8Ca: pair(root, 't8-ca'),
    servicesDir,
    services,
    operatorDir,
    operator: pair(operatorDir, OPERATOR_NAME),
    edgeT8: pair(root, 'edge-t8'),
    edgeNotifier: pair(root, 'edge-notifier'),
    natsServer: pair(root, 'nats-server'),
    natsAdmin: pair(operatorDir, NATS_ADMIN_NAME),
  };
}

/** The PKI layout under a state folder; the paths are absolute whatever `stateDir` is. */
export function pkiLayout(stateDir: string): PkiLayout {
  const abs = resolve(stateDir);
  return layoutAtRoot(abs, join(abs, 'pki'));
}

/** Every certificate/key pair of a layout, for existence checks. @internal */
export function allCertKeyPaths(layout: PkiLayout): CertKeyPaths[] {
  return [
    layout.meshCa,
    layout.asCa,
    layout.t8Ca,
    ...MESH_SERVICES.map(name => layout.services[name]),
    layout.operator,
    layout.edgeT8,
    layout.edgeNotifier,
    layout.natsServer,
    layout.natsAdmin,
  ];
}
