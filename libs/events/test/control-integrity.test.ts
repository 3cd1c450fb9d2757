/**
 * Control streams as a trust root: a consumer accounts for every sequence of its stream. A
 * deleted event (mid-stream or at the tail, or a purge) is tampering, reported once and never
 * papered over; in a stream with retention, events that expired are not. Key outages are waited
 * out without a verdict.
 */
import { expect } from 'chai';
import { Writable } from 'node:stream';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { AeseError } from '@aese/errors';
import { createLogger } from '@aese/logger';
import { ecdsaEventSigner, eventually, startNatsServer } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';
import {
  AuditLog,
  CONTROL_STREAM,
  CONTROL_SUBJECTS,
  ControlConsumer,
  ControlPublisher,
  JwksEventVerifier,
  TOKEN_REVOCATIONS_STREAM,
  TOKEN_REVOCATIONS_SUBJECT,
  ensureControlStream,
  ensureTokenRevocationStream,
} from '../src/index.ts';
import type { AuditEvent, ControlSubject, EventVerifier, RejectedEventReason } from '../src/index.ts';

const RETENTION_MS = 3_000;

describe('control stream integrity: gaps are tampering unless retention explains them', function () {
  this.timeout(30_000);
  let nats: NatsServerProcess;
  let nc: NatsConnection;
  const trusted = ecdsaEventSigner('event-key-1');
  const verifier = new JwksEventVerifier(async () => [trusted.jwk]);

  beforeEach(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    await ensureControlStream(nc);
    await ensureTokenRevocationStream(nc, RETENTION_MS);
  });
  afterEach(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  /** A consumer with its log lines, audit events, applied payloads and rejections. */
  const follow = (subject: ControlSubject, options: { retentionMs?: number; verifier?: EventVerifier; conn?: NatsConnection } = {}) => {
    const lines: string[] = [];
    const audited: AuditEvent[] = [];
    const applied: string[] = [];
    const rejected: RejectedEventReason[] = [];
    const logger = createLogger({
      service: 'test',
      level: 'info',
      destination: new Writable({
        write(chunk: Buffer, _e, cb) {
          lines.push(
            ...chunk
              .toString('utf8')
              .split('\n')
              .filter(l => l.length > 0),
          );
          cb();
        },
      }),
    });
    const consumer = new ControlConsumer(options.conn ?? nc, {
      subject,
      verifier: options.verifier ?? verifier,
      logger,
      audit: new AuditLog('test', { write: async e => void audited.push(e) }),
      ...(options.retentionMs === undefined ? {} : { retentionMs: options.retentionMs }),
      apply: e => void applied.push(Buffer.from(e.payload).toString()),
      onRejected: reason => void rejected.push(reason),
    });
    return { consumer, lines, audited, applied, rejected };
  };
  const publishAll = async (subject: ControlSubject, payloads: string[]): Promise<number[]> => {
    const pub = new ControlPublisher(nc, trusted.signer);
    const out: number[] = [];
    for (const p of payloads) out.push(await pub.publish(subject, 'test.Revoked', Buffer.from(p)));
    return out;
  };
  const tamperLines = (lines: string[]) => lines.filter(l => l.includes('was tampered with'));

  it('a deleted event mid-stream: the consumer starts, reports TAMPERED once, applies nothing after the gap', async () => {
    await publishAll(CONTROL_SUBJECTS.revocations, ['as-1', 'as-2']);
    await publishAll(CONTROL_SUBJECTS.registry, ['reg-1']);
    await publishAll(CONTROL_SUBJECTS.revocations, ['as-3']);
    // Positive control: the intact stream replays in full and the consumer is current.
    const intact = follow(CONTROL_SUBJECTS.revocations);
    await intact.consumer.start();
    expect(intact.consumer.status).to.equal('current');
    expect(intact.applied).to.deep.equal(['as-1', 'as-2', 'as-3']);
    intact.consumer.stop();

    // The insider deletes the second revocation (sequence 2).
    await (await nc.jetstreamManager()).streams.deleteMessage(CONTROL_STREAM, 2);
    // Two consumers on one connection (revocations and registry read the same stream): one report.
    const a = follow(CONTROL_SUBJECTS.revocations);
    const b = follow(CONTROL_SUBJECTS.registry);
    await Promise.all([a.consumer.start(), b.consumer.start()]);
    expect(a.consumer.status).to.equal('tampered');
    expect(b.consumer.status).to.equal('tampered');
    expect(a.applied).to.deep.equal(['as-1']);
    expect(b.applied).to.deep.equal([]);
    const lines = [...tamperLines(a.lines), ...tamperLines(b.lines)];
    expect(lines).to.have.length(1);
    expect(lines[0]).to.include(`control stream ${CONTROL_STREAM} was tampered with: sequence 2 missing`);
    const audits = [...a.audited, ...b.audited].filter(e => e.reason === 'TAMPERED');
    expect(audits).to.have.length(1);
    expect(audits[0]).to.include({ action: 'control.integrity', decision: 'deny' });
    expect(audits[0].detail).to.include({ stream: CONTROL_STREAM, firstMissing: 2, lastMissing: 2 });
    // Later events never take effect on a tampered stream.
    await publishAll(CONTROL_SUBJECTS.revocations, ['as-4']);
    await new Promise(r => setTimeout(r, 300));
    expect(a.applied).to.deep.equal(['as-1']);
    a.consumer.stop();
    b.consumer.stop();
  });

  it('the last event deleted: start() does not report caught-up, it resolves with TAMPERED naming the sequence', async () => {
    await publishAll(CONTROL_SUBJECTS.revocations, ['as-1', 'as-2', 'as-3']);
    await (await nc.jetstreamManager()).streams.deleteMessage(CONTROL_STREAM, 3);
    const c = follow(CONTROL_SUBJECTS.revocations);
    await c.consumer.start();
    expect(c.consumer.status).to.equal('tampered');
    expect(c.applied).to.deep.equal(['as-1', 'as-2']);
    expect(tamperLines(c.lines)).to.have.length(1);
    expect(tamperLines(c.lines)[0]).to.include('sequence 3 missing');
    c.consumer.stop();
  });

  it('a purged stream (every event gone, last sequence kept by the server) is TAMPERED; an empty new stream is not', async () => {
    // Positive control: a stream that never had events.
    const fresh = follow(CONTROL_SUBJECTS.revocations);
    await fresh.consumer.start();
    expect(fresh.consumer.status).to.equal('current');
    fresh.consumer.stop();
    await publishAll(CONTROL_SUBJECTS.revocations, ['as-1', 'as-2']);
    await (await nc.jetstreamManager()).streams.purge(CONTROL_STREAM);
    const c = follow(CONTROL_SUBJECTS.revocations);
    await c.consumer.start();
    expect(c.consumer.status).to.equal('tampered');
    expect(tamperLines(c.lines)[0]).to.include('sequences 1..2 missing');
    c.consumer.stop();
  });

  it('token revocations that expired with the retention are no gap; a recent one deleted is', async () => {
    await publishAll(TOKEN_REVOCATIONS_SUBJECT, ['jti-1', 'jti-2']);
    const js = await nc.jetstreamManager();
    await eventually(async () => (await js.streams.info(TOKEN_REVOCATIONS_STREAM)).state.messages === 0, 15_000);
    // Everything expired: the stream's last sequence is 2 and it holds nothing. Not tampering.
    const empty = follow(TOKEN_REVOCATIONS_SUBJECT, { retentionMs: RETENTION_MS });
    await empty.consumer.start();
    expect(empty.consumer.status).to.equal('current');
    expect(empty.applied).to.deep.equal([]);
    empty.consumer.stop();
    // New events after expired ones: the first carries (signed) its expired predecessor's time.
    await publishAll(TOKEN_REVOCATIONS_SUBJECT, ['jti-3', 'jti-4', 'jti-5']);
    const after = follow(TOKEN_REVOCATIONS_SUBJECT, { retentionMs: RETENTION_MS });
    await after.consumer.start();
    expect(after.consumer.status).to.equal('current');
    expect(after.applied).to.deep.equal(['jti-3', 'jti-4', 'jti-5']);
    after.consumer.stop();
    // A revocation deleted while it is still in force (sequence 4: jti-4) is tampering.
    await js.streams.deleteMessage(TOKEN_REVOCATIONS_STREAM, 4);
    const c = follow(TOKEN_REVOCATIONS_SUBJECT, { retentionMs: RETENTION_MS });
    await c.consumer.start();
    expect(c.consumer.status).to.equal('tampered');
    expect(c.applied).to.deep.equal(['jti-3']);
    expect(tamperLines(c.lines)[0]).to.include(`control stream ${TOKEN_REVOCATIONS_STREAM} was tampered with: sequence 4 missing`);
    c.consumer.stop();
  });

  it('the same deletion without a retention (the permanent stream rules) is tampering even for old events', async () => {
    await publishAll(TOKEN_REVOCATIONS_SUBJECT, ['jti-1', 'jti-2']);
    const js = await nc.jetstreamManager();
    await eventually(async () => (await js.streams.info(TOKEN_REVOCATIONS_STREAM)).state.messages === 0, 15_000);
    const c = follow(TOKEN_REVOCATIONS_SUBJECT);
    await c.consumer.start();
    expect(c.consumer.status).to.equal('tampered');
    c.consumer.stop();
  });

  it('keys unavailable (crypto not up): no verdict, no BAD_SIGNATURE, not caught up until keys come', async () => {
    await publishAll(CONTROL_SUBJECTS.revocations, ['as-1', 'as-2']);
    let cryptoUp = false;
    let fetches = 0;
    const late = new JwksEventVerifier(async () => {
      fetches++;
      if (!cryptoUp) throw new AeseError('UNAVAILABLE', 'crypto is not up');
      return [trusted.jwk];
    });
    const c = follow(CONTROL_SUBJECTS.revocations, { verifier: late });
    let started = false;
    const starting = c.consumer.start().then(() => (started = true));
    await eventually(() => fetches >= 2);
    expect(started, 'caught up without keys').to.equal(false);
    expect(c.consumer.status).to.equal('waiting-for-keys');
    expect(c.rejected).to.deep.equal([]);
    expect(c.applied).to.deep.equal([]);
    cryptoUp = true;
    await starting;
    expect(c.consumer.status).to.equal('current');
    expect(c.applied).to.deep.equal(['as-1', 'as-2']);
    expect(c.rejected).to.deep.equal([]);
    expect(c.audited.filter(e => e.reason === 'BAD_SIGNATURE')).to.deep.equal([]);
    // Positive control: a forgery is still refused as one once keys are there.
    await new ControlPublisher(nc, ecdsaEventSigner('event-key-1').signer).publish(CONTROL_SUBJECTS.revocations, 'test.Revoked', Buffer.from('forged'));
    await eventually(() => c.rejected.length === 1);
    expect(c.rejected).to.deep.equal(['BAD_SIGNATURE']);
    c.consumer.stop();
  });
});
