/**
 * The revocation feed: permanent revocations in the control stream, token revocations in their
 * own stream with a retention, and signed snapshots of the token revocations so that a start
 * verifies one snapshot and the tail instead of the whole window.
 */
import { expect } from 'chai';
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
import type { AuditEvent, EventVerifier } from '@aese/events';
import { createLogger } from '@aese/logger';
import { ecdsaEventSigner, eventually, startNatsServer } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';
import { encodeRevocation, followRevocations, REVOCATION_EVENT_TYPE, REVOCATION_SNAPSHOT_TYPE, revocationSubject } from '../src/index.ts';
import type { Revocation } from '../src/index.ts';

describe('revocation feed: two streams and token snapshots', function () {
  this.timeout(30_000);
  let nats: NatsServerProcess;
  let nc: NatsConnection;
  const trusted = ecdsaEventSigner('event-key-1');
  const logger = createLogger({ service: 'test', level: 'silent' });

  beforeEach(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    await ensureControlStream(nc);
    await ensureTokenRevocationStream(nc, 600_000);
  });
  afterEach(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  /** A verifier that counts signature checks (each one a real ECDSA verification). */
  const counting = (): { verifier: EventVerifier; count: () => number } => {
    const inner = new JwksEventVerifier(async () => [trusted.jwk]);
    let n = 0;
    return { verifier: { verify: (kid, data, sig) => (n++, inner.verify(kid, data, sig)) }, count: () => n };
  };
  const feed = (options: { verifier?: EventVerifier; publisher?: ControlPublisher; audited?: AuditEvent[]; onRevoked?: (r: Revocation) => void } = {}) =>
    followRevocations({
      nc,
      verifier: options.verifier ?? new JwksEventVerifier(async () => [trusted.jwk]),
      logger,
      audit: new AuditLog('test', { write: async e => void options.audited?.push(e) }),
      tokenRetentionS: 600,
      snapshotEvery: 10,
      ...(options.publisher ? { snapshotPublisher: options.publisher } : {}),
      ...(options.onRevoked ? { onRevoked: options.onRevoked } : {}),
    });
  const tokenRevocation = (i: number): Revocation => ({ kind: 'token', jti: `jti-${i}`, expiresAt: Math.floor(Date.now() / 1000) + 300 });
  const revoke = (pub: ControlPublisher, r: Revocation) => pub.publish(revocationSubject(r), REVOCATION_EVENT_TYPE, encodeRevocation(r, Date.now()));
  const snapshots = async (): Promise<number> => {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(TOKEN_REVOCATIONS_STREAM, { subjects_filter: TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT });
    return info.state.subjects?.[TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT] ?? 0;
  };

  it('token revocations go to their own stream, AS revocations stay in the control stream; both are followed', async () => {
    const pub = new ControlPublisher(nc, trusted.signer);
    const writer = feed();
    await writer.consumer.start();
    await revoke(pub, { kind: 'application-server', scsAsId: 'as-1' });
    await revoke(pub, tokenRevocation(1));
    await eventually(() => writer.list.isApplicationServerRevoked('as-1') && writer.list.isTokenRevoked('jti-1'));
    const jsm = await nc.jetstreamManager();
    expect((await jsm.streams.getMessage(TOKEN_REVOCATIONS_STREAM, { last_by_subj: TOKEN_REVOCATIONS_SUBJECT })).seq).to.equal(1);
    expect((await jsm.streams.getMessage('AESE_CONTROL', { last_by_subj: CONTROL_SUBJECTS.revocations })).seq).to.equal(1);
    writer.consumer.stop();
  });

  it('a revocation that cannot be applied leaves the whole feed failed (not current), though the other stream is fine', async () => {
    const pub = new ControlPublisher(nc, trusted.signer);
    const broken = feed({
      onRevoked: r => {
        if (r.kind === 'application-server') throw new Error('enforcement failed');
      },
    });
    await broken.consumer.start();
    expect(broken.consumer.status).to.equal('current');
    await revoke(pub, tokenRevocation(1));
    await eventually(() => broken.list.isTokenRevoked('jti-1'));
    expect(broken.consumer.status, 'positive control: applied revocations keep it current').to.equal('current');
    await revoke(pub, { kind: 'application-server', scsAsId: 'as-1' });
    await eventually(() => broken.consumer.status === 'failed');
    broken.consumer.stop();
  });

  it('a start loads the last signed snapshot and verifies only the tail; every revocation still holds', async () => {
    const pub = new ControlPublisher(nc, trusted.signer);
    const writer = feed({ publisher: pub });
    await writer.consumer.start();
    for (let i = 0; i < 25; i++) {
      await revoke(pub, tokenRevocation(i));
      // One revocation at a time, as the writer's consumer sees them (a snapshot lands in between).
      await eventually(() => writer.list.isTokenRevoked(`jti-${i}`));
    }
    await eventually(async () => (await snapshots()) >= 2);
    writer.consumer.stop();

    const { verifier, count } = counting();
    const reader = feed({ verifier });
    await reader.consumer.start();
    expect(reader.consumer.status).to.equal('current');
    for (let i = 0; i < 25; i++) expect(reader.list.isTokenRevoked(`jti-${i}`), `jti-${i}`).to.equal(true);
    // One snapshot (covering 20) and the tail of 5, not 25 events plus snapshots.
    expect(count()).to.be.at.most(1 + 5);
    reader.consumer.stop();
  });

  it('a forged snapshot is refused and audited; the start replays the stream instead and misses nothing', async () => {
    const pub = new ControlPublisher(nc, trusted.signer);
    for (let i = 0; i < 5; i++) await revoke(pub, tokenRevocation(i));
    // An insider publishes a snapshot that forgets every revocation, signed with its own key.
    const forger = new ControlPublisher(nc, ecdsaEventSigner('event-key-1').signer);
    await forger.publish(TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT, REVOCATION_SNAPSHOT_TYPE, new Uint8Array());
    const audited: AuditEvent[] = [];
    const reader = feed({ audited });
    await reader.consumer.start();
    expect(reader.consumer.status).to.equal('current');
    for (let i = 0; i < 5; i++) expect(reader.list.isTokenRevoked(`jti-${i}`)).to.equal(true);
    await eventually(() => audited.some(e => e.reason === 'BAD_SIGNATURE'));
    reader.consumer.stop();
  });

  it('deleting the newest snapshot is tampering (its successor cannot vouch for it); the intact stream is not', async () => {
    const pub = new ControlPublisher(nc, trusted.signer);
    const writer = feed({ publisher: pub });
    await writer.consumer.start();
    for (let i = 0; i < 12; i++) {
      await revoke(pub, tokenRevocation(i));
      await eventually(() => writer.list.isTokenRevoked(`jti-${i}`));
    }
    await eventually(async () => (await snapshots()) >= 1);
    writer.consumer.stop();
    const jsm = await nc.jetstreamManager();
    const snap = await jsm.streams.getMessage(TOKEN_REVOCATIONS_STREAM, { last_by_subj: TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT });
    // Positive control: intact, the feed starts current.
    const intact = feed();
    await intact.consumer.start();
    expect(intact.consumer.status).to.equal('current');
    intact.consumer.stop();
    await jsm.streams.deleteMessage(TOKEN_REVOCATIONS_STREAM, snap.seq);
    const reader = feed();
    await reader.consumer.start();
    expect(reader.consumer.status).to.equal('tampered');
    reader.consumer.stop();
  });
});
