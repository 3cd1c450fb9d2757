import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { OPERATOR_NAME, pkiLayout, readMeshTlsMaterial, spiffeId } from '@aese/pki';
import { KeyPurpose, SignatureAlgorithm } from '@aese/protos/common/v1';
import { CryptoServiceClient, KeyStatus } from '@aese/protos/crypto/v1';
import type { GetJwksRequest, GetJwksResponse, RotateKeyRequest, RotateKeyResponse } from '@aese/protos/crypto/v1';
import type { Env } from '@aese/config';
import { noPositionals, parseCommandArgs } from './args.js';
import { EXIT_OK, UsageError } from './errors.js';
import { formatTable } from './output.js';
import { existingPkiTrustDomain, loadCliConfig } from './settings.js';
import type { CliConfig } from './settings.js';

/** The crypto service's operator RPCs as the key commands use them. */
export interface KeyAdminClient {
  rotateKey(request: RotateKeyRequest): Promise<RotateKeyResponse>;
  getJwks(request: GetJwksRequest): Promise<GetJwksResponse>;
}

export const KEYS_USAGE = `  aese keys rotate [--purpose access-token|message-signing|event-signing|audit-signing] [--alg ES256|EdDSA]
      Create a new signing key version and make it active at once; the previous key stays in
      the JWKS until everything it signed has expired (default purpose: access-token).
  aese keys list
      The published signing keys: kid, purpose, algorithm, status, retirement time.
`;

const PURPOSES: Readonly<Record<string, KeyPurpose>> = {
  'access-token': KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN,
  'message-signing': KeyPurpose.KEY_PURPOSE_MESSAGE_SIGNING,
  'event-signing': KeyPurpose.KEY_PURPOSE_EVENT_SIGNING,
  'audit-signing': KeyPurpose.KEY_PURPOSE_AUDIT_SIGNING,
};
const ALGS: Readonly<Record<string, SignatureAlgorithm>> = {
  ES256: SignatureAlgorithm.SIGNATURE_ALGORITHM_ES256,
  EdDSA: SignatureAlgorithm.SIGNATURE_ALGORITHM_EDDSA,
};

interface Io {
  readonly stdout: (text: string) => void;
  readonly env: Env;
}

/** Runs a key command with an operator connection to the crypto service. */
/** A crypto client over mTLS as the operator (the only identity on its admin allow-list). */
export function operatorCryptoClient(config: CliConfig): MeshClient<CryptoServiceClient> {
  return createMeshClient(CryptoServiceClient, {
    address: config.cryptoAddr,
    tls: readMeshTlsMaterial(pkiLayout(config.stateDir), OPERATOR_NAME),
    serverId: spiffeId(existingPkiTrustDomain(config), 'svc', 'crypto'),
  });
}

export function keysCommand(run: (args: readonly string[], client: KeyAdminClient, stdout: (t: string) => void) => Promise<number>) {
  return async (args: readonly string[], io: Io): Promise<number> => {
    const client = operatorCryptoClient(loadCliConfig(io.env));
    try {
      return await run(args, client, io.stdout);
    } finally {
      client.close();
    }
  };
}

export async function keysRotate(args: readonly string[], client: KeyAdminClient, stdout: (t: string) => void): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { purpose: { type: 'string' }, alg: { type: 'string' } });
  noPositionals(positionals, 'keys rotate');
  const purposeName = values.purpose ?? 'access-token';
  const purpose = PURPOSES[purposeName];
  if (purpose === undefined) throw new UsageError(`--purpose must be one of ${Object.keys(PURPOSES).join(', ')}`);
  const algName = values.alg;
  const algorithm = algName === undefined ? SignatureAlgorithm.SIGNATURE_ALGORITHM_UNSPECIFIED : ALGS[algName];
  if (algorithm === undefined) throw new UsageError(`--alg must be one of ${Object.keys(ALGS).join(', ')}`);
  const out = await client.rotateKey({ purpose, algorithm });
  stdout(`rotated ${purposeName}: new key ${out.key?.kid ?? '?'}${out.retiredKid ? `, retired ${out.retiredKid}` : ''}\n`);
  return EXIT_OK;
}

export async function keysList(args: readonly string[], client: KeyAdminClient, stdout: (t: string) => void): Promise<number> {
  noPositionals(parseCommandArgs(args, {}).positionals, 'keys list');
  const { keys } = await client.getJwks({});
  const purposeName = (p: KeyPurpose) => Object.entries(PURPOSES).find(([, v]) => v === p)?.[0] ?? 'unknown';
  stdout(
    formatTable(
      ['KID', 'PURPOSE', 'ALG', 'STATUS', 'LEAVES_JWKS'],
      keys.map(k => [
        k.kid,
        purposeName(k.purpose),
        k.algorithm === SignatureAlgorithm.SIGNATURE_ALGORITHM_EDDSA ? 'EdDSA' : 'ES256',
        k.status === KeyStatus.KEY_STATUS_RETIRED ? 'retired' : 'active',
        k.expiresAtMs > 0 ? new Date(k.expiresAtMs).toISOString() : '-',
      ]),
    ),
  );
  return EXIT_OK;
}
