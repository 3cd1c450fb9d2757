import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import type { Env } from '@aese/config';
import { AeseError } from '@aese/errors';
import { readAuditTrail, verifyAuditTrail } from '@aese/events';
import type { AuditEvent } from '@aese/events';
import { noPositionals, parseCommandArgs } from './args.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './errors.js';
import { formatTable } from './output.js';
import { loadCliConfig } from './settings.js';

export const AUDIT_USAGE = `  aese audit tail [-n <count>] [--json]
      The latest audit events (denied security decisions; changes of credentials, policies, keys).
  aese audit verify
      Check every hash chain of the audit trail; exits 1 and names the breaks if an event was
      removed, altered or reordered.
`;

interface Io {
  readonly stdout: (text: string) => void;
  readonly env: Env;
}

/** Runs an audit command with a NATS connection. */
export function auditCommand(run: (args: readonly string[], nc: NatsConnection, stdout: (t: string) => void) => Promise<number>) {
  return async (args: readonly string[], io: Io): Promise<number> => {
    const config = loadCliConfig(io.env);
    let nc: NatsConnection;
    try {
      nc = await connect({ servers: config.natsUrl.split(','), timeout: 5000 });
    } catch (err) {
      throw new AeseError('UNAVAILABLE', `cannot reach NATS at ${config.natsUrl}`, { cause: err });
    }
    try {
      return await run(args, nc, io.stdout);
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

export async function auditVerify(args: readonly string[], nc: NatsConnection, stdout: (t: string) => void): Promise<number> {
  noPositionals(parseCommandArgs(args, {}).positionals, 'audit verify');
  const result = verifyAuditTrail(await readAuditTrail(nc));
  if (result.breaks.length === 0) {
    stdout(`audit trail intact: ${result.events} events in ${result.chains} chains\n`);
    return EXIT_OK;
  }
  stdout(`audit trail BROKEN: ${result.breaks.length} break(s) in ${result.events} events, ${result.chains} chains\n`);
  for (const b of result.breaks) stdout(`  chain ${b.chain} event ${b.seq}: ${b.problem}\n`);
  return EXIT_FAILURE;
}
