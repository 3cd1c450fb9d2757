import { expect } from 'chai';
import { connect } from 'nats';
import type { NatsConnection } from 'nats';
import { createLogger } from '@aese/logger';
import { ecdsaEventSigner, startNatsServer } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';
import {
  AuditLog,
  CONTROL_STREAM,
  CONTROL_SUBJECTS,
  ControlConsumer,
  ControlPublisher,
  JwksEventVerifier,
  NatsAuditSink,
  ensureAuditStream,
  ensureControlStream,
  readAuditTrail,
  verifyAuditTrail,
} from '../src/index.ts';
import type { AuditEvent, RejectedEventReason } from '../src/index.ts';

const until = async (cond: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise(r => setTimeout(r, 10));
  }
};

describe('signed control events over JetStream', () => {
  let nats: NatsServerProcess;
  let nc: NatsConnection;
  const trusted = ecdsaEventSigner('event-key-1');
  const attacker = ecdsaEventSigner('event-key-1'); // same kid, other key: a forgery
  const verifier = new JwksEventVerifier(async () => [trusted.jwk]);

  before(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    await ensureControlStream(nc);
  });
  after(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  const consumer = (applied: string[], rejected: RejectedEventReason[]) =>
    new ControlConsumer(nc, {
      subject: CONTROL_SUBJECTS.revocations,
      verifier,
      logger: createLogger({ service: 'test', level: 'silent' }),
      audit: new AuditLog('test', { write: async () => undefined }),
      apply: e => void applied.push(Buffer.from(e.payload).toString()),
      onRejected: reason => void rejected.push(reason),
    });

  it('a late starter catches up on every earlier event before start() resolves', async () => {
    const pub = new ControlPublisher(nc, trusted.signer);
    const v1 = await pub.publish(CONTROL_SUBJECTS.revocations, 'test.Revoked', Buffer.from('as-1'));
    const v2 = await pub.publish(CONTROL_SUBJECTS.revocations, 'test.Revoked', Buffer.from('as-2'));
    expect(v2).to.be.greaterThan(v1);
    const applied: string[] = [];
    const c = consumer(applied, []);
    await c.start();
    expect(applied).to.deep.equal(['as-1', 'as-2']);
    expect(c.version).to.equal(v2);
    c.stop();
  });

  it('ignores a forged event and a replayed copy of an old one, and reports both', async () => {
    const applied: string[] = [];
    const rejected: RejectedEventReason[] = [];
    const c = consumer(applied, rejected);
    await c.start();
    const before = applied.length;
    await new ControlPublisher(nc, attacker.signer).publish(CONTROL_SUBJECTS.revocations, 'test.Revoked', Buffer.from('forged'));
    // Replay: the raw bytes of the first genuine event, published again.
    const jsm = await nc.jetstreamManager();
    const first = await jsm.streams.getMessage(CONTROL_STREAM, { seq: 1 });
    await nc.jetstream().publish(CONTROL_SUBJECTS.revocations, first.data);
    // Positive control: a genuine new event after them is applied.
    await new ControlPublisher(nc, trusted.signer).publish(CONTROL_SUBJECTS.revocations, 'test.Revoked', Buffer.from('as-3'));
    await until(() => applied.includes('as-3'));
    expect(applied.slice(before)).to.deep.equal(['as-3']);
    expect(rejected).to.deep.equal(['BAD_SIGNATURE', 'STALE_VERSION']);
    c.stop();
  });

  it('concurrent publishers never share a version', async () => {
    const pubs = [new ControlPublisher(nc, trusted.signer), new ControlPublisher(nc, trusted.signer)];
    const versions = await Promise.all(Array.from({ length: 10 }, (_, i) => pubs[i % 2].publish(CONTROL_SUBJECTS.policies, 'test.Policy', Buffer.from(String(i)))));
    expect(new Set(versions).size).to.equal(10);
  });
});

describe('hash-chained audit trail', () => {
  let nats: NatsServerProcess;
  let nc: NatsConnection;
  before(async () => {
    nats = await startNatsServer();
    nc = await connect({ servers: nats.url });
    await ensureAuditStream(nc);
  });
  after(async () => {
    await nc?.close();
    await nats?.dispose();
  });

  it('verifies an intact trail and finds a removed and an altered event', async () => {
    const a = new AuditLog('edge', new NatsAuditSink(nc));
    const b = new AuditLog('authentication', new NatsAuditSink(nc));
    for (let i = 0; i < 5; i++) {
      a.record({ actor: 'as-1', action: 't8.request', decision: 'deny', reason: 'REPLAYED' });
      b.record({ actor: 'as-2', action: 'token.issue', decision: 'deny', reason: 'INVALID_SCOPE' });
    }
    await Promise.all([a.flush(), b.flush()]);
    const trail = await readAuditTrail(nc);
    expect(trail).to.have.length(10);
    expect(verifyAuditTrail(trail)).to.deep.include({ chains: 2, events: 10, breaks: [] });

    const removed = trail.filter((_, i) => i !== 4);
    const r = verifyAuditTrail(removed);
    expect(r.breaks.map(x => x.problem)).to.include('MISSING');

    const altered: AuditEvent[] = trail.map((e, i) => (i === 3 ? { ...e, decision: 'allow' as const } : e));
    const t = verifyAuditTrail(altered);
    expect(t.breaks).to.deep.include({ chain: trail[3].chain, seq: trail[3].seq, problem: 'ALTERED' });
  });
});
