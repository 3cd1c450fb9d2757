import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { isIP } from 'node:net';
import { createSelfSignedCa, issueCertificate } from './ca.js';
import type { KeyPairPem } from './ca.js';
import { ensurePrivateDir, PRIVATE_DIR_MODE, PRIVATE_FILE_MODE, writePrivateKeyFile, writePublicFile } from './files.js';
import { allCertKeyPaths, layoutAtRoot, MESH_SERVICES, NATS_ADMIN_NAME, OPERATOR_NAME, pkiLayout } from './layout.js';
import type { CertKeyPaths, PkiLayout } from './layout.js';
import { certificateThumbprint, pemToDer, readPem } from './pem.js';
import { isValidTrustDomain, spiffeId } from './spiffe.js';

/** Host names the T8 server certificate is issued for when none are given. */
export const DEFAULT_T8_HOSTNAMES: readonly string[] = ['localhost'];

/** Default lifetime of an AS client certificate, in days. */
export const DEFAULT_AS_CERT_VALIDITY_DAYS = 365;

/** Options of {@link initPki}. */
export interface InitPkiOptions {
  /** The state folder; the PKI goes to `<stateDir>/pki`. */
  readonly stateDir: string;
  /** The SPIFFE trust domain of every identity issued, e.g. `scef.example.org`. */
  readonly trustDomain: string;
  /** DNS names (or IP literals) ASes use to reach the edge; default {@link DEFAULT_T8_HOSTNAMES}. */
  readonly t8Hostnames?: readonly string[];
}

/** Contents of `pki.json`. */
export interface PkiMetadata {
  readonly trustDomain: string;
  readonly createdAt: string;
  readonly t8Hostnames?: readonly string[];
}

/**
 * Reads `pki.json`, or returns undefined when there is no PKI yet.
 *
 * @throws Error when the file exists but is not valid metadata.
 */
export function readPkiMetadata(layout: PkiLayout): PkiMetadata | undefined {
  if (!existsSync(layout.metadata)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(layout.metadata, 'utf8'));
  } catch (err: unknown) {
    throw new Error(`${layout.metadata} is not valid JSON`, { cause: err });
  }
  const meta = parsed as Partial<PkiMetadata> | null;
  if (!meta || typeof meta.trustDomain !== 'string' || typeof meta.createdAt !== 'string') {
    throw new Error(`${layout.metadata} lacks trustDomain or createdAt`);
  }
  return meta as PkiMetadata;
}

function assertTrustDomain(layout: PkiLayout, meta: PkiMetadata, trustDomain: string): void {
  if (meta.trustDomain !== trustDomain) {
    throw new Error(
      `the PKI in ${layout.root} was created for trust domain "${meta.trustDomain}", not "${trustDomain}"; ` + 'use a different state folder or remove the existing PKI',
    );
  }
}

/**
 * Checks an existing PKI is complete and re-tightens key and folder modes. A PKI made before the
 * NATS certificates existed gets them, issued by its own mesh CA; nothing else is created.
 */
async function checkExisting(layout: PkiLayout, trustDomain: string): Promise<void> {
  const meta = readPkiMetadata(layout)!;
  assertTrustDomain(layout, meta, trustDomain);
  const meshCa: KeyPairPem = { certPem: readPem(layout.meshCa.cert), keyPem: readPem(layout.meshCa.key) };
  if (!existsSync(layout.natsServer.cert) && !existsSync(layout.natsServer.key)) writePair(layout.natsServer, await issueNatsServer(meshCa, trustDomain));
  if (!existsSync(layout.natsAdmin.cert) && !existsSync(layout.natsAdmin.key)) writePair(layout.natsAdmin, await issueNatsAdmin(meshCa, trustDomain));
  for (const { cert, key } of allCertKeyPaths(layout)) {
    for (const path of [cert, key]) {
      if (!existsSync(path)) throw new Error(`the PKI in ${layout.root} is incomplete: ${path} is missing`);
    }
    chmodSync(key, PRIVATE_FILE_MODE);
  }
  for (const dir of [layout.root, layout.servicesDir, layout.operatorDir]) chmodSync(dir, PRIVATE_DIR_MODE);
}

function writePair(paths: CertKeyPaths, pair: KeyPairPem): void {
  writePrivateKeyFile(paths.key, pair.keyPem);
  writePublicFile(paths.cert, pair.certPem);
}

function validateT8Hostnames(hostnames: readonly string[]): void {
  if (!Array.isArray(hostnames) || hostnames.length === 0) throw new TypeError('t8Hostnames must be a non-empty array');
}

/** Host names of the NATS server certificate: one host, compose, and the nodes of a 3-node cluster. */
export const NATS_SERVER_HOSTNAMES: readonly string[] = ['localhost', 'nats', 'nats-0', 'nats-1', 'nats-2'];

/**
 * The NATS server certificate: serverAuth for clients, clientAuth too because cluster nodes
 * authenticate each other's routes with it.
 */
function issueNatsServer(meshCa: KeyPairPem, trustDomain: string): Promise<KeyPairPem> {
  return issueCertificate(meshCa, {
    subject: 'CN=nats',
    uriSans: [spiffeId(trustDomain, 'svc', 'nats')],
    dnsNames: [...NATS_SERVER_HOSTNAMES],
    ipAddresses: ['127.0.0.1'],
    extendedKeyUsages: ['serverAuth', 'clientAuth'],
  });
}

/** The JetStream administrator's client certificate. */
function issueNatsAdmin(meshCa: KeyPairPem, trustDomain: string): Promise<KeyPairPem> {
  return issueCertificate(meshCa, {
    subject: `CN=${NATS_ADMIN_NAME}`,
    uriSans: [spiffeId(trustDomain, 'operator', NATS_ADMIN_NAME)],
    extendedKeyUsages: ['clientAuth'],
  });
}

/** Generates every CA and certificate into `layout` (a staging folder). */
async function generate(layout: PkiLayout, trustDomain: string, t8Hostnames: readonly string[]): Promise<void> {
  for (const dir of [layout.root, layout.servicesDir, layout.operatorDir]) ensurePrivateDir(dir);

  const [meshCa, asCa, t8Ca] = await Promise.all([
    createSelfSignedCa(`aese mesh CA ${trustDomain}`.slice(0, 64)),
    createSelfSignedCa(`aese AS CA ${trustDomain}`.slice(0, 64)),
    createSelfSignedCa(`aese T8 server CA ${trustDomain}`.slice(0, 64)),
  ]);
  writePair(layout.meshCa, meshCa);
  writePair(layout.asCa, asCa);
  writePair(layout.t8Ca, t8Ca);

  const services = await Promise.all(
    MESH_SERVICES.map(name =>
      issueCertificate(meshCa, {
        subject: `CN=${name}`,
        uriSans: [spiffeId(trustDomain, 'svc', name)],
        dnsNames: ['localhost', name],
        ipAddresses: ['127.0.0.1'],
        extendedKeyUsages: ['serverAuth', 'clientAuth'],
      }),
    ),
  );
  MESH_SERVICES.forEach((name, i) => writePair(layout.services[name], services[i]));

  writePair(
    layout.operator,
    await issueCertificate(meshCa, {
      subject: `CN=${OPERATOR_NAME}`,
      uriSans: [spiffeId(trustDomain, 'operator', OPERATOR_NAME)],
      extendedKeyUsages: ['clientAuth'],
    }),
  );

  writePair(layout.natsServer, await issueNatsServer(meshCa, trustDomain));
  writePair(layout.natsAdmin, await issueNatsAdmin(meshCa, trustDomain));

  const dnsNames = [...new Set(t8Hostnames.filter(h => isIP(h) === 0))];
  const ipAddresses = [...new Set([...t8Hostnames.filter(h => isIP(h) !== 0), '127.0.0.1'])];
  writePair(
    layout.edgeT8,
    await issueCertificate(t8Ca, {
      subject: `CN=${t8Hostnames[0]}`,
      dnsNames,
      ipAddresses,
      extendedKeyUsages: ['serverAuth'],
    }),
  );
  writePair(
    layout.edgeNotifier,
    await issueCertificate(t8Ca, {
      subject: `CN=notifications.${trustDomain}`.slice(0, 64),
      uriSans: [spiffeId(trustDomain, 'svc', 'edge')],
      extendedKeyUsages: ['clientAuth'],
    }),
  );

  const meta: PkiMetadata = { trustDomain, createdAt: new Date().toISOString(), t8Hostnames: [...t8Hostnames] };
  writePublicFile(layout.metadata, `${JSON.stringify(meta, null, 2)}\n`);
}

/**
 * Creates the operator PKI under `<stateDir>/pki`: the mesh, AS and T8 server CAs, one
 * certificate per mesh service, the operator's client certificate and the edge's T8 server
 * certificate. Everything is generated in a staging folder and renamed into place at the end,
 * so an interrupted run leaves no half-made PKI and two concurrent runs cannot mix CAs.
 *
 * Idempotent: when `pki.json` exists nothing is created and `created` is false, provided the
 * existing PKI has the same trust domain and is complete.
 *
 * @throws TypeError for a malformed trust domain or host name.
 * @throws Error when an existing PKI has another trust domain (naming both) or is incomplete.
 */
export async function initPki(opts: InitPkiOptions): Promise<{ created: boolean; layout: PkiLayout }> {
  const { trustDomain } = opts;
  if (!isValidTrustDomain(trustDomain)) {
    throw new TypeError(`invalid trust domain ${JSON.stringify(trustDomain)}: expected [a-z0-9._-]{1,255}`);
  }
  const t8Hostnames = opts.t8Hostnames ?? DEFAULT_T8_HOSTNAMES;
  validateT8Hostnames(t8Hostnames);
  const layout = pkiLayout(opts.stateDir);

  if (existsSync(layout.metadata)) {
    await checkExisting(layout, trustDomain);
    return { created: false, layout };
  }
  if (existsSync(layout.root)) {
    throw new Error(`${layout.root} exists but holds no pki.json; it is not a PKI made by initPki, remove it first`);
  }

  mkdirSync(layout.stateDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  const staging = mkdtempSync(`${layout.root}.staging-`);
  try {
    await generate(layoutAtRoot(layout.stateDir, staging), trustDomain, t8Hostnames);
    try {
      renameSync(staging, layout.root);
    } catch (err: unknown) {
      const code = (err as NodeJS.ErrnoException).code;
      if ((code === 'EEXIST' || code === 'ENOTEMPTY') && existsSync(layout.metadata)) {
        // Another process finished first: use its PKI.
        await checkExisting(layout, trustDomain);
        return { created: false, layout };
      }
      throw err;
    }
  } finally {
    rmSync(staging, { recursive: true, force: true });
  }
  return { created: true, layout };
}

/**
 * Issues a client certificate for an SCS/AS, signed by the AS CA in the state folder: subject
 * `CN=<scsAsId>`, URI SAN `spiffe://<td>/as/<scsAsId>`, EKU clientAuth only. The returned
 * thumbprint is what onboarding registers for the AS and what access tokens are bound to. The
 * certificate is returned, not stored: the AS keeps the key, the registry keeps the thumbprint.
 *
 * @throws TypeError for a malformed scsAsId or trust domain.
 * @throws Error when there is no PKI in `stateDir` or it has another trust domain.
 */
export async function issueAsClientCertificate(
  stateDir: string,
  trustDomain: string,
  scsAsId: string,
  opts: { validityDays?: number; notBefore?: Date; notAfter?: Date } = {},
): Promise<KeyPairPem & { thumbprint: string }> {
  const uri = spiffeId(trustDomain, 'as', scsAsId);
  const layout = pkiLayout(stateDir);
  const meta = readPkiMetadata(layout);
  if (!meta) throw new Error(`no PKI in ${layout.root}: run initPki first`);
  assertTrustDomain(layout, meta, trustDomain);
  const asCa: KeyPairPem = { certPem: readPem(layout.asCa.cert), keyPem: readPem(layout.asCa.key) };
  const pair = await issueCertificate(asCa, {
    subject: `CN=${scsAsId}`,
    uriSans: [uri],
    extendedKeyUsages: ['clientAuth'],
    validityDays: opts.validityDays ?? DEFAULT_AS_CERT_VALIDITY_DAYS,
    ...(opts.notBefore ? { notBefore: opts.notBefore } : {}),
    ...(opts.notAfter ? { notAfter: opts.notAfter } : {}),
  });
  return { ...pair, thumbprint: certificateThumbprint(pemToDer(pair.certPem)) };
}

/** The PEM a mesh TLS endpoint needs: the mesh CA to verify peers, its own certificate and key. */
export interface MeshTlsMaterial {
  readonly caPem: string;
  readonly certPem: string;
  readonly keyPem: string;
}

/**
 * Reads the mesh TLS material of a service or of the operator from the state folder. Every mesh
 * hop trusts only the mesh CA, so this is the one place that pairs them.
 */
export function readMeshTlsMaterial(layout: PkiLayout, identity: (typeof MESH_SERVICES)[number] | typeof OPERATOR_NAME): MeshTlsMaterial {
  const paths = identity === OPERATOR_NAME ? layout.operator : layout.services[identity];
  if (!paths) throw new TypeError(`unknown mesh identity ${JSON.stringify(identity)}`);
  return { caPem: readPem(layout.meshCa.cert), certPem: readPem(paths.cert), keyPem: readPem(paths.key) };
}

/** The PEM the edge's T8 listener needs: its server certificate and key, and the AS CA for clients. */
export interface T8ServerTlsMaterial {
  readonly certPem: string;
  readonly keyPem: string;
  /** Trust anchor for AS client certificates; never the mesh CA. */
  readonly clientCaPem: string;
}

/** Reads the edge's T8 server TLS material from the state folder. */
export function readT8ServerTlsMaterial(layout: PkiLayout): T8ServerTlsMaterial {
  return {
    certPem: readPem(layout.edgeT8.cert),
    keyPem: readPem(layout.edgeT8.key),
    clientCaPem: readPem(layout.asCa.cert),
  };
}
