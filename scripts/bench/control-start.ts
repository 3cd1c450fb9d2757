/**
 * npm run bench:control-start [-- --count=10000 --runs=5]
 *
 * Start-up time of a control consumer (the revocation feed every service runs) over a control
 * state of `count` signed events, median of `runs` starts, each with a cold key cache. Three
 * fillings: `count` token revocations in their own stream (what AS traffic produces, bounded by
 * the retention) with the signed snapshots authentication writes, the same without snapshots,
 * and `count` AS revocations in the permanent control stream (operator actions, never dropped).
 * Events are signed with a local P-256 key; every event a start reads is verified.
 */
import { performance } from 'node:perf_hooks';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import {
  AuditLog,
  CONTROL_SUBJECTS,
  ControlPublisher,
  ensureControlStream,
  ensureTokenRevocationStream,
  JwksEventVerifier,
  TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT,
  TOKEN_REVOCATIONS_STREAM,
  TOKEN_REVOCATIONS_SUBJECT,
} from '@aese/events';
import { RevocationSnapshot, SignedEvent } from '@aese/protos/events/v1';
import type { ControlSubject } from '@aese/events';
import { createLogger } from '@aese/logger';
import { encodeRevocation, followRevocations, REVOCATION_EVENT_TYPE, TOKEN_SNAPSHOT_EVERY } from '@aese/revocation';
import type { Revocation, RevocationList } from '@aese/revocation';
import { ecdsaEventSigner, startNatsServer } from '@aese/testing';

const arg = (name: string, fallback: number): number => Number(process.argv.find(a => a.startsWith(`--${name}=`))?.split('=')[1] ?? fallback);
const COUNT = arg('count', 10_000);
const RUNS = arg('runs', 5);
const RETENTION_S = 900;

const { signer, jwk } = ecdsaEventSigner('bench-event-key');

async function fill(nc: NatsConnection, count: number, subject: ControlSubject, make: (i: number) => Revocation, withSnapshots: boolean): Promise<number> {
  const pub = new ControlPublisher(nc, signer);
  // Authentication's own feed: it writes a signed snapshot every TOKEN_SNAPSHOT_EVERY token revocations.
  const writer = withSnapshots ? followRevocations({ ...feedOptions(nc), snapshotPublisher: pub }) : undefined;
  await writer?.consumer.start();
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const r = make(i);
    await pub.publish(subject, REVOCATION_EVENT_TYPE, encodeRevocation(r, Date.now()));
    // As in the service, the writer follows each revocation before the next one comes.
    if (writer && r.kind === 'token') while (!writer.list.isTokenRevoked(r.jti)) await new Promise(res => setImmediate(res));
  }
  const ms = performance.now() - started;
  // Let a pending snapshot land before the writer stops.
  await new Promise(res => setTimeout(res, 200));
  writer?.consumer.stop();
  return ms;
}

function feedOptions(nc: NatsConnection) {
  return {
    nc,
    // A cold key cache, as in a starting service (one fetch, then local verification).
    verifier: new JwksEventVerifier(async () => [jwk]),
    logger: createLogger({ service: 'bench', level: 'silent' }),
    audit: new AuditLog('bench', { write: async () => undefined }),
    tokenRetentionS: RETENTION_S,
  };
}

/** One start of the revocation feed on a fresh connection: its duration (ms), status, and state check. */
async function startOnce(url: string, check: (list: RevocationList) => boolean): Promise<{ ms: number; status: string; ok: boolean }> {
  const nc = await connect({ servers: url });
  const { list, consumer } = followRevocations(feedOptions(nc));
  const t0 = performance.now();
  await consumer.start();
  const ms = performance.now() - t0;
  const status = consumer.status;
  consumer.stop();
  await nc.close();
  return { ms, status, ok: check(list) };
}

/** How many stream messages come after the sequence the last snapshot covers. */
async function snapshotTail(nc: NatsConnection): Promise<number> {
  const jsm = await nc.jetstreamManager();
  const last = (await jsm.streams.info(TOKEN_REVOCATIONS_STREAM)).state.last_seq;
  const snap = await jsm.streams.getMessage(TOKEN_REVOCATIONS_STREAM, { last_by_subj: TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT });
  const covered = RevocationSnapshot.decode(SignedEvent.decode(snap.data).payload).coversThroughSeq;
  return last - covered;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function scenario(
  name: string,
  subject: ControlSubject,
  make: (i: number) => Revocation,
  check: (list: RevocationList) => boolean,
  options: { withSnapshots?: boolean; count?: number } = {},
): Promise<string> {
  const count = options.count ?? COUNT;
  const nats = await startNatsServer();
  try {
    const nc = await connect({ servers: nats.url });
    await ensureControlStream(nc);
    await ensureTokenRevocationStream(nc, RETENTION_S * 1000);
    const fillMs = await fill(nc, count, subject, make, options.withSnapshots ?? false);
    const tail = options.withSnapshots ? await snapshotTail(nc) : undefined;
    await nc.close();
    const times: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      const run = await startOnce(nats.url, check);
      if (run.status !== 'current' || !run.ok) throw new Error(`the feed started ${run.status} without the full state`);
      times.push(run.ms);
    }
    const m = median(times);
    const shape = tail === undefined ? '' : `, replayed after the last snapshot: ${tail} events`;
    return `${name}: ${count} events (filled in ${(fillMs / 1000).toFixed(1)} s${shape}); revocation feed start-up median ${m.toFixed(0)} ms over ${RUNS} runs (min ${Math.min(...times).toFixed(0)}, max ${Math.max(...times).toFixed(0)}), ${((m * 1000) / count).toFixed(0)} µs/event`;
  } finally {
    await nats.dispose();
  }
}

async function main(): Promise<void> {
  const lines: string[] = [];
  const now = Math.floor(Date.now() / 1000);
  const lastJti = `bench-jti-${COUNT - 1}`;
  const tokenCheck = (list: RevocationList) => list.isTokenRevoked('bench-jti-0') && list.isTokenRevoked(lastJti);
  lines.push(
    await scenario(
      'token revocations with signed snapshots every 1,000 (as authentication writes them)',
      TOKEN_REVOCATIONS_SUBJECT,
      i => ({ kind: 'token', jti: `bench-jti-${i}`, expiresAt: now + 600 }),
      tokenCheck,
      { withSnapshots: true },
    ),
  );
  // The worst case for snapshots: the last one is TOKEN_SNAPSHOT_EVERY - 1 events old.
  lines.push(
    await scenario(
      'token revocations with signed snapshots, longest tail',
      TOKEN_REVOCATIONS_SUBJECT,
      i => ({ kind: 'token', jti: `bench-jti-${i}`, expiresAt: now + 600 }),
      list => list.isTokenRevoked('bench-jti-0') && list.isTokenRevoked(`bench-jti-${COUNT + TOKEN_SNAPSHOT_EVERY - 2}`),
      { withSnapshots: true, count: COUNT + TOKEN_SNAPSHOT_EVERY - 1 },
    ),
  );
  lines.push(
    await scenario(
      'token revocations without snapshots (whole retention window replayed)',
      TOKEN_REVOCATIONS_SUBJECT,
      i => ({ kind: 'token', jti: `bench-jti-${i}`, expiresAt: now + 600 }),
      tokenCheck,
    ),
  );
  const lastAs = `bench-as-${COUNT - 1}`;
  lines.push(
    await scenario(
      'AS revocations (permanent control stream)',
      CONTROL_SUBJECTS.revocations,
      i => ({ kind: 'application-server', scsAsId: `bench-as-${i}` }),
      list => list.isApplicationServerRevoked('bench-as-0') && list.isApplicationServerRevoked(lastAs),
    ),
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench:control-start failed: ${(err as Error).message}\n`);
    process.exit(1);
  },
);
