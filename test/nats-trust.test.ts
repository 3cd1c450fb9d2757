import { expect } from 'chai';
import { AckPolicy, connect, DeliverPolicy } from 'nats';
import type { NatsConnection } from 'nats';
import {
  AUDIT_STREAM,
  CONTROL_STREAM,
  CONTROL_SUBJECTS,
  NETWORK_EVENTS_STREAM,
  networkEventSubject,
  NOTIFICATION_OUTCOMES_STREAM,
  NOTIFICATIONS_STREAM,
  notificationOutcomeSubject,
  TOKEN_REVOCATIONS_STREAM,
  TOKEN_REVOCATIONS_SUBJECT,
} from '@aese/events';
import { KV_BUCKETS } from '@aese/nats';
import { NATS_IDENTITIES } from '@aese/nats-trust';
import type { NatsIdentity } from '@aese/nats-trust';
import { initPki, issueAsClientCertificate, pkiLayout, readPem } from '@aese/pki';
import { nonceTtlMs, REPLAY_WINDOW_STREAM, REPLAY_WINDOW_SUBJECT_PREFIX, streamConfig } from '@aese/replay-window';
import { connectNatsAs, startNatsServer, tempDir } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';
import { startTestMesh, TEST_TRUST_DOMAIN } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';

/**
 * NATS as a secured engine, through a nats-server running the shipped configuration
 * (libs/nats-trust): nobody gets in without a mesh certificate, and each identity may touch only
 * what the trust model gives it. A probe counts as refused only when the server says
 * "Permissions Violation"; anything else (an ack, or "no message found") means it got through.
 */

type Probe = (nc: NatsConnection) => Promise<unknown>;

async function refused(nc: NatsConnection, probe: Probe): Promise<boolean> {
  try {
    await probe(nc);
    return false;
  } catch (err) {
    return /permissions violation/i.test(String((err as Error).message));
  }
}

const putKv =
  (bucket: string): Probe =>
  nc =>
    nc.jetstream().publish(`$KV.${bucket}.probe`, Buffer.from('{}'));
const publish =
  (subject: string): Probe =>
  nc =>
    nc.jetstream().publish(subject, Buffer.from('probe'));
const readStream =
  (stream: string): Probe =>
  async nc =>
    (await nc.jetstreamManager()).streams.info(stream);
/** Reading a stream's messages takes a consumer on it. */
const consumeStream =
  (stream: string): Probe =>
  async nc =>
    (await nc.jetstreamManager()).consumers.add(stream, { name: `probe-${Math.random().toString(36).slice(2)}`, inactive_threshold: 1e9 });
const directGet =
  (bucket: string): Probe =>
  async nc =>
    (await nc.jetstreamManager()).streams.getMessage(`KV_${bucket}`, { last_by_subj: `$KV.${bucket}.probe` });
const deleteMessage =
  (stream: string): Probe =>
  async nc =>
    (await nc.jetstreamManager()).streams.deleteMessage(stream, 1);
const purge =
  (stream: string): Probe =>
  async nc =>
    (await nc.jetstreamManager()).streams.purge(stream);
const shortenRetention =
  (stream: string): Probe =>
  async nc =>
    (await nc.jetstreamManager()).streams.update(stream, { max_msgs: 1_000_000 });
const listStreams: Probe = async nc => (await nc.jetstreamManager()).streams.list().next();
/** A raw subscription: violations close it, and its iterator then throws the server's error. */
const subscribe =
  (subject: string): Probe =>
  async nc => {
    const sub = nc.subscribe(subject);
    await nc.flush();
    await Promise.race([sub.closed, new Promise(r => setTimeout(r, 1_000))]);
    if (sub.isClosed()) for await (const _ of sub) void _;
    sub.unsubscribe();
  };

describe('NATS trust model: the shipped configuration refuses anonymous clients and gives each identity least privilege', function () {
  this.timeout(120_000);
  let dir: ReturnType<typeof tempDir>;
  let nats: NatsServerProcess;
  const conns = new Map<NatsIdentity, NatsConnection>();

  before(async () => {
    dir = tempDir('aese-nats-trust');
    await initPki({ stateDir: dir.path, trustDomain: TEST_TRUST_DOMAIN });
    nats = await startNatsServer({ secured: { stateDir: dir.path, trustDomain: TEST_TRUST_DOMAIN } });
    for (const identity of NATS_IDENTITIES) conns.set(identity, await connectNatsAs(nats.url, dir.path, identity));
    // Every bucket and stream exists (made by the administrator), so an allowed write is acked.
    const admin = conns.get('nats-admin')!;
    for (const bucket of Object.values(KV_BUCKETS)) await admin.jetstream().views.kv(bucket);
    const jsm = await admin.jetstreamManager();
    await jsm.streams.add({ name: CONTROL_STREAM, subjects: ['aese.control.v1.>'] });
    await jsm.streams.add({ name: AUDIT_STREAM, subjects: ['aese.audit.v1.>'] });
    await jsm.streams.add({ name: NOTIFICATIONS_STREAM, subjects: ['aese.notifications.v1.>'] });
    await jsm.streams.add({ name: NOTIFICATION_OUTCOMES_STREAM, subjects: ['aese.notification-outcomes.v1.>'] });
    await jsm.streams.add({ name: TOKEN_REVOCATIONS_STREAM, subjects: ['aese.token-revocations.v1.>'] });
    await jsm.streams.add({ name: NETWORK_EVENTS_STREAM, subjects: ['aese.network-events.v1.>'] });
    await jsm.streams.add(streamConfig({ ttlMs: nonceTtlMs(60, 10) }));
  });
  after(async () => {
    for (const nc of conns.values()) await nc.close();
    await nats?.dispose();
    dir?.remove();
  });

  it('refuses a client without TLS, a TLS client without a certificate, and one with a certificate from another CA; a mesh certificate gets in', async () => {
    const layout = pkiLayout(dir.path);
    const ca = readPem(layout.meshCa.cert);
    const attempt = async (opts: Parameters<typeof connect>[0]): Promise<string> => {
      try {
        const nc = await connect({ servers: nats.url.replace('tls://', 'nats://'), timeout: 3_000, ...opts });
        // A connection that got this far must still be unable to see anything.
        const seen = await listStreams(nc).then(
          () => 'listed streams',
          (err: Error) => err.message,
        );
        await nc.close();
        return `connected: ${seen}`;
      } catch (err) {
        return `refused: ${(err as Error).message}`;
      }
    };
    expect(await attempt({})).to.match(/^refused/);
    expect(await attempt({ tls: { ca } })).to.match(/^refused/);
    const asCert = await issueAsClientCertificate(dir.path, TEST_TRUST_DOMAIN, 'some-as');
    expect(await attempt({ tls: { ca, cert: asCert.certPem, key: asCert.keyPem } })).to.match(/^refused/);
    // Positive control: the operator's mesh certificate connects (and still may not list streams).
    expect(await attempt({ tls: { ca, cert: readPem(layout.operator.cert), key: readPem(layout.operator.key) } })).to.match(/^connected: .*Permissions Violation/);
  });

  /** [what, probe, the identities allowed; every other identity must be refused]. */
  const MATRIX: [string, Probe, NatsIdentity[]][] = [
    ['list every stream', listStreams, ['nats-admin']],
    ['write a signing key', putKv(KV_BUCKETS.signingKeys), ['crypto', 'nats-admin']],
    ['read the signing-keys bucket', readStream(`KV_${KV_BUCKETS.signingKeys}`), ['crypto', 'nats-admin']],
    ['write an AS registry entry', putKv(KV_BUCKETS.applicationServers), ['authentication', 'nats-admin']],
    ['write the certificate index', putKv(KV_BUCKETS.certificateIndex), ['authentication', 'nats-admin']],
    ['read a registry entry', directGet(KV_BUCKETS.applicationServers), ['authentication', 'nats-admin']],
    ['write a policy version', putKv(KV_BUCKETS.policies), ['authorization', 'nats-admin']],
    ['read the policy versions', readStream(`KV_${KV_BUCKETS.policies}`), ['authorization', 'capability-exposure', 'nats-admin']],
    ['write a subscription', putKv(KV_BUCKETS.subscriptions), ['capability-exposure', 'nats-admin']],
    ['write a replay nonce', publish(`${REPLAY_WINDOW_SUBJECT_PREFIX}.probe`), ['replay-guard', 'edge', 'nats-admin']],
    ['read the replay nonces', consumeStream(REPLAY_WINDOW_STREAM), ['replay-guard', 'edge', 'nats-admin']],
    ['write a replay lease', putKv(KV_BUCKETS.replayLeases), ['edge', 'nats-admin']],
    ['write the deployment record', putKv(KV_BUCKETS.deployment), ['crypto', 'nats-admin']],
    ['publish a revocation', publish(CONTROL_SUBJECTS.revocations), ['authentication', 'nats-admin']],
    ['publish a registry change', publish(CONTROL_SUBJECTS.registry), ['authentication', 'nats-admin']],
    ['publish on the (unused) policy control subject', publish(CONTROL_SUBJECTS.policies), ['nats-admin']],
    ['publish a token revocation', publish(TOKEN_REVOCATIONS_SUBJECT), ['authentication', 'nats-admin']],
    ['publish a key rotation', publish(CONTROL_SUBJECTS.keys), ['crypto', 'nats-admin']],
    ['request a notification', publish('aese.notifications.v1.victim-as'), ['capability-exposure', 'nats-admin']],
    ['read the notification stream', readStream(NOTIFICATIONS_STREAM), ['capability-exposure', 'edge', 'nats-admin']],
    ['report a notification delivery outcome', publish(notificationOutcomeSubject('victim-as')), ['edge', 'nats-admin']],
    ['read the notification delivery outcomes', consumeStream(NOTIFICATION_OUTCOMES_STREAM), ['capability-exposure', 'nats-admin']],
    ['publish a network event', publish(networkEventSubject('event.location')), ['capability-exposure', 'nats-admin']],
    ['read the network events', consumeStream(NETWORK_EVENTS_STREAM), ['capability-exposure', 'nats-admin']],
    ['take the simulated network lease', putKv(KV_BUCKETS.networkOwner), ['capability-exposure', 'nats-admin']],
    ["append to crypto's audit chain", publish('aese.audit.v1.crypto.chain-1'), ['crypto', 'nats-admin']],
    ['read the audit trail', consumeStream(AUDIT_STREAM), ['admin', 'nats-admin']],
    ['read the control stream', consumeStream(CONTROL_STREAM), ['crypto', 'authentication', 'edge', 'nats-admin']],
    ['read the token revocations', consumeStream(TOKEN_REVOCATIONS_STREAM), ['authentication', 'edge', 'nats-admin']],
    ['delete a control event', deleteMessage(CONTROL_STREAM), ['nats-admin']],
    ['purge the registry bucket', purge(`KV_${KV_BUCKETS.applicationServers}`), ['nats-admin']],
    ["change the control stream's retention", shortenRetention(CONTROL_STREAM), ['nats-admin']],
    ["change the nonce stream's retention", shortenRetention(REPLAY_WINDOW_STREAM), ['nats-admin']],
    ['subscribe to control subjects outside JetStream', subscribe('aese.control.v1.>'), ['nats-admin']],
    ["read crypto's replies (its inbox)", subscribe('_INBOX_crypto.>'), ['crypto', 'nats-admin']],
  ];

  it('a reader cannot use a push consumer to write into a bucket it may not write (delivery to $KV.*)', async () => {
    const admin = conns.get('nats-admin')!;
    await conns.get('capability-exposure')!.jetstream().publish('aese.notifications.v1.some-as', Buffer.from('a notification'));
    const registry = `KV_${KV_BUCKETS.applicationServers}`;
    const before = (await (await admin.jetstreamManager()).streams.info(registry)).state.last_seq;
    // The edge may create consumers on the notification stream; it aims one at the registry.
    await (
      await conns.get('edge')!.jetstreamManager()
    ).consumers.add(NOTIFICATIONS_STREAM, {
      durable_name: 'redirect',
      deliver_subject: `$KV.${KV_BUCKETS.applicationServers}.victim`,
      ack_policy: AckPolicy.None,
      deliver_policy: DeliverPolicy.All,
    });
    // Polled for a while: the delivery, if it were stored, would land within milliseconds.
    for (let i = 0; i < 10; i++) {
      expect((await (await admin.jetstreamManager()).streams.info(registry)).state.last_seq).to.equal(before);
      await new Promise(r => setTimeout(r, 100));
    }
    // Positive control: the administrator's own write lands.
    await admin.jetstream().publish(`$KV.${KV_BUCKETS.applicationServers}.control`, Buffer.from('{}'));
    expect((await (await admin.jetstreamManager()).streams.info(registry)).state.last_seq).to.equal(before + 1);
  });

  for (const [what, probe, allowed] of MATRIX) {
    it(`${what}: only ${allowed.join(', ')}`, async () => {
      const outcome: Record<string, boolean> = {};
      for (const identity of NATS_IDENTITIES) outcome[identity] = !(await refused(conns.get(identity)!, probe));
      const expected = Object.fromEntries(NATS_IDENTITIES.map(i => [i, allowed.includes(i)]));
      expect(outcome).to.deep.equal(expected);
    });
  }
});

describe('a deployment knows its NATS', function () {
  this.timeout(120_000);
  let mesh: TestMesh;

  before(async () => {
    mesh = await startTestMesh();
  });
  after(async () => {
    await mesh?.stop();
  });

  it('a service started against NATS holding another deployment’s state refuses in one line with the way out; with its own, it starts', async () => {
    const admin = await mesh.natsConnect('nats-admin');
    try {
      const kv = await admin.jetstream().views.kv(KV_BUCKETS.deployment, { bindOnly: true });
      const ours = (await kv.get('deployment'))!;
      const record = JSON.parse(Buffer.from(ours.value).toString('utf8')) as { meshCa: string; trustDomain: string };
      expect(record.trustDomain).to.equal(TEST_TRUST_DOMAIN);
      await kv.put('deployment', Buffer.from(JSON.stringify({ ...record, meshCa: 'AnotherDeploymentsMeshCaThumbprint', createdAt: '2026-01-01T00:00:00Z' })));
      let failure = '';
      await mesh.restart('authentication').catch((err: Error) => (failure = err.message));
      expect(failure).to.match(/^the NATS server .* holds the state of another deployment \(mesh CA AnotherDeplo\.\.\., .*\): point NATS_URL at this deployment's NATS/);
      expect(failure.split('\n')).to.have.length(1);
      // Positive control: with this deployment's record back, the same service starts.
      await kv.put('deployment', ours.value);
      await mesh.restart('authentication');
    } finally {
      await admin.close();
    }
  });
});
