import { readFileSync } from 'node:fs';
import type { NatsConnection } from 'nats';
import { pkiLayout } from '@aese/pki';
import { checkDeployment } from '@aese/runtime';
import type { Env } from '@aese/config';
import { AeseError } from '@aese/errors';
import { auditSigningKeys, readAuditStream, readAuditTrail, verifyKeyedAuditTrail } from '@aese/events';
import type { AuditEvent } from '@aese/events';
import { noPositionals, parseCommandArgs } from './args.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './errors.js';
import { formatTable } from './output.js';
import { cliNatsUrl, connectOperatorNats } from './nats-endpoint.js';
import { operatorCryptoClient } from './keys-commands.js';
import { existingPkiTrustDomain, loadCliConfig } from './settings.js';
import type { CliConfig } from './settings.js';

export const AUDIT_USAGE = `  aese audit tail [-n <count>] [--json]
      The latest audit events (denied security decisions; changes of credentials, policies, keys).
  aese audit verify [--grace <seconds>]
      Check the audit trail: no stream message deleted, every hash chain whole, every chain head
      checkpoint signed by crypto's audit-signing key and still matching its events. Exits 1 and
      names each chain and problem if events were removed, re-hashed, reordered or cut off, a
      chain was dropped or a checkpoint forged. A chain no checkpoint covers fails once it is
      older than the grace period (default 300 s).
`;

interface Io {
  readonly stdout: (text: string) => void;
  readonly env: Env;
}

/** Runs an audit command with a NATS connection. */
export function auditCommand(run: (args: readonly string[], nc: NatsConnection, stdout: (t: string) => void, config: CliConfig) => Promise<number>) {
  return async (args: readonly string[], io: Io): Promise<number> => {
    const config = loadCliConfig(io.env);
    const natsUrl = cliNatsUrl(config.stateDir, config.natsUrl);
    let nc: NatsConnection;
    try {
      nc = await connectOperatorNats(config.stateDir, natsUrl, config.natsCaFile);
    } catch (err) {
      throw new AeseError('UNAVAILABLE', `cannot reach NATS at ${natsUrl}: ${(err as Error).message}`, { cause: err });
    }
    try {
      // Another deployment's trail would verify against the wrong keys and mislead: refuse it.
      const layout = pkiLayout(config.stateDir);
      await checkDeployment(nc, { meshCaPem: readFileSync(layout.meshCa.cert, 'utf8'), trustDomain: existingPkiTrustDomain(config), record: false, natsUrl });
      return await run(args, nc, io.stdout, config);
    } finally {
      await nc.close();
    }
  };
}

function row(e: AuditEvent): string[] {
  return [e.at, e.service, e.decision, e.action, e.actor, e.reason];
}

export async function auditTail(args: readonly string[], nc: NatsConnection, stdout: (t: string) => void): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { n: { type: 'string', short: 'n' }, json: { type: 'boolean' } });
  noPositionals(positionals, 'audit tail');
  const count = values.n === undefined ? 20 : Number(values.n);
  if (!Number.isInteger(count) || count < 1 || count > 100_000) throw new UsageError('-n must be an integer in [1, 100000]');
  const trail = (await readAuditTrail(nc)).slice(-count);
  stdout(values.json ? `${JSON.stringify(trail, null, 2)}\n` : formatTable(['AT', 'SERVICE', 'DECISION', 'ACTION', 'ACTOR', 'REASON'], trail.map(row)));
  return EXIT_OK;
}

/** Default of `--grace`: far above the checkpoint delay, below any plausible review interval. */
export const DEFAULT_AUDIT_GRACE_S = 300;

/** The audit-signing public keys, from crypto over mTLS as the operator. */
async function fetchAuditKeys(config: CliConfig) {
  const client = operatorCryptoClient(config);
  try {
    return auditSigningKeys((await client.getJwks({})).keys);
  } catch (err) {
    throw new AeseError('UNAVAILABLE', `cannot fetch the audit-signing keys from crypto at ${config.cryptoAddr}: ${(err as Error).message}`, { cause: err });
  } finally {
    client.close();
  }
}

export async function auditVerify(args: readonly string[], nc: NatsConnection, stdout: (t: string) => void, config: CliConfig): Promise<number> {
  const { values, positionals } = parseCommandArgs(args, { grace: { type: 'string' } });
  noPositionals(positionals, 'audit verify');
  const graceS = values.grace === undefined ? DEFAULT_AUDIT_GRACE_S : Number(values.grace);
  if (!Number.isInteger(graceS) || graceS < 0 || graceS > 365 * 24 * 3600) throw new UsageError('--grace must be a whole number of seconds');
  const keys = await fetchAuditKeys(config);
  const result = verifyKeyedAuditTrail(await readAuditStream(nc), keys, { nowMs: Date.now(), graceMs: graceS * 1000 });
  const counts = `${result.events} events in ${result.chains} chains, ${result.checkpoints} checkpoints`;
  if (result.breaks.length === 0) {
    stdout(`audit trail intact: ${counts}\n`);
    for (const u of result.unsealed) stdout(`  chain ${u.chain}: events ${u.fromSeq}..${u.toSeq} not yet covered by a checkpoint\n`);
    return EXIT_OK;
  }
  stdout(`audit trail BROKEN: ${result.breaks.length} problem(s) in ${counts}\n`);
  for (const b of result.breaks) stdout(`  chain ${b.chain}: ${b.problem}: ${b.detail}\n`);
  return EXIT_FAILURE;
}
