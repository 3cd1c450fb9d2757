import { AeseError } from '@aese/errors';
import { KV_BUCKETS, openKv, retryJetStream } from '@aese/nats';
import type { NatsConnection } from '@aese/nats';
import { certificateThumbprint, pemToDer } from '@aese/pki';

/** What NATS records about the deployment whose state it holds. */
export interface DeploymentRecord {
  /** The SHA-256 thumbprint (base64url) of the deployment's mesh CA certificate. */
  readonly meshCa: string;
  readonly trustDomain: string;
  readonly createdAt: string;
}

const KEY = 'deployment';

/**
 * Makes sure NATS holds this deployment's state: its record names this deployment's mesh CA.
 * The first crypto service records it; every service refuses to start, in one line that says
 * what to do, against a NATS that holds another deployment's state. Before crypto has recorded
 * anything the others go on (crypto checks the same record when it starts).
 */
export async function checkDeployment(nc: NatsConnection, opts: { meshCaPem: string; trustDomain: string; record: boolean; natsUrl: string }): Promise<void> {
  const meshCa = certificateThumbprint(pemToDer(opts.meshCaPem));
  const js = nc.jetstream();
  let stored: DeploymentRecord | undefined;
  try {
    // Retried while a cluster elects leaders; a bucket that does not exist yet is not an error
    // for the services crypto has not recorded the deployment for yet.
    const kv = opts.record
      ? await openKv(nc, KV_BUCKETS.deployment, { history: 1 })
      : await retryJetStream(() => js.views.kv(KV_BUCKETS.deployment, { bindOnly: true })).catch((err: unknown) => {
          if (/stream not found/i.test(String((err as Error).message))) return undefined;
          throw err;
        });
    if (!kv) return;
    const entry = await retryJetStream(() => kv.get(KEY));
    if (entry && entry.operation === 'PUT') stored = JSON.parse(Buffer.from(entry.value).toString('utf8')) as DeploymentRecord;
    if (!stored && opts.record) {
      const mine: DeploymentRecord = { meshCa, trustDomain: opts.trustDomain, createdAt: new Date().toISOString() };
      // create() refuses to overwrite: a concurrent first start keeps one record.
      await kv.create(KEY, Buffer.from(JSON.stringify(mine))).catch(() => undefined);
      const again = await kv.get(KEY);
      stored = again ? (JSON.parse(Buffer.from(again.value).toString('utf8')) as DeploymentRecord) : undefined;
    }
  } catch (err) {
    throw new AeseError('UNAVAILABLE', `cannot read the deployment record in NATS at ${opts.natsUrl}`, { cause: err });
  }
  if (stored && stored.meshCa !== meshCa) {
    throw new AeseError(
      'FAILED_PRECONDITION',
      `the NATS server ${opts.natsUrl} holds the state of another deployment (mesh CA ${stored.meshCa.slice(0, 12)}..., trust domain ${stored.trustDomain}, ` +
        `created ${stored.createdAt}; this one's mesh CA is ${meshCa.slice(0, 12)}...): point NATS_URL at this deployment's NATS, ` +
        'or leave NATS_URL unset so npm start runs a private one under the state folder',
    );
  }
}
