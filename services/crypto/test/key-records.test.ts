import { expect } from 'chai';
import { generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { AeseError } from '@aese/errors';
import { KEY_PURPOSES, KeyCustody, recordMac } from '../src/domain/keys.ts';
import type { KeyRecord, KeyRecordRejection, KeyRecordStore } from '../src/domain/keys.ts';

/** A store that keeps every revision, oldest first, as the KV bucket's history does. */
class HistoryStore implements KeyRecordStore {
  readonly revisions: unknown[] = [];
  async list(): Promise<unknown[]> {
    return [...this.revisions];
  }
  async put(r: KeyRecord): Promise<void> {
    this.revisions.push(r);
  }
  latest(kid: string): KeyRecord {
    return [...this.revisions].reverse().find(r => (r as KeyRecord).kid === kid) as KeyRecord;
  }
}

const SIGNER = 'spiffe://t/svc/authentication';

function custodyOf(store: KeyRecordStore, kek: Buffer, clock: { now: number }, rejected: [string, KeyRecordRejection][] = []): KeyCustody {
  return new KeyCustody({
    store,
    kek,
    signers: { 'access-token': [SIGNER], 'message-signing': [], 'event-signing': [SIGNER], 'audit-signing': [] },
    algorithms: { 'access-token': 'ES256', 'message-signing': 'EdDSA', 'event-signing': 'ES256', 'audit-signing': 'ES256' },
    retirementMs: 60_000,
    onRejected: (kid, reason) => rejected.push([kid, reason]),
    now: () => clock.now,
  });
}

/** A P-256 key of the attacker's own, as a public JWK for a record. */
function ownKey(kid: string): { jwk: Record<string, string>; privateKey: ReturnType<typeof generateKeyPairSync>['privateKey'] } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { jwk: { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid, alg: 'ES256', use: 'sig' }, privateKey };
}

describe('key records: only records crypto wrote are applied (domain, frozen clock)', () => {
  const data = Buffer.from('aese-control-event/v1\nsubject\n');

  it('a store written by one custody loads in another with the same KEK (positive control)', async () => {
    const kek = randomBytes(32);
    const store = new HistoryStore();
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const first = custodyOf(store, kek, clock);
    await first.init();
    const signed = await first.sign(SIGNER, 'event-signing', data);
    const rejected: [string, KeyRecordRejection][] = [];
    const second = custodyOf(store, kek, clock, rejected);
    await second.init();
    expect(rejected).to.deep.equal([]);
    expect(second.verify(signed.kid, data, signed.signature)).to.equal(true);
    expect((await second.sign(SIGNER, 'event-signing', data)).kid).to.equal(signed.kid);
  });

  it('refuses a record with a key of its own (retired, unexpired): not published, does not verify, reported once', async () => {
    const kek = randomBytes(32);
    const store = new HistoryStore();
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const rejected: [string, KeyRecordRejection][] = [];
    const custody = custodyOf(store, kek, clock, rejected);
    await custody.init();
    const real = store.revisions[0] as KeyRecord;
    const forged = ownKey('event-signing-forged');
    const record = {
      ...real,
      kid: 'event-signing-forged',
      purpose: 'event-signing',
      status: 'retired',
      createdAtMs: clock.now - 1_000,
      expiresAtMs: clock.now + 3_600_000,
      publicJwk: forged.jwk,
      mac: randomBytes(32).toString('base64url'),
    };
    expect(custody.apply(record)).to.equal(false);
    expect(custody.apply({ ...record, mac: undefined })).to.equal(false);
    expect(custody.published().map(k => k.kid)).not.to.include('event-signing-forged');
    const sig = sign('sha256', data, { key: forged.privateKey, dsaEncoding: 'ieee-p1363' });
    expect(custody.verify('event-signing-forged', data, sig)).to.equal(false);
    expect(rejected).to.deep.equal([
      ['event-signing-forged', 'MAC_INVALID'],
      ['event-signing-forged', 'MALFORMED'],
    ]);
    // Seen again on a reload: no second report.
    await store.put(record as KeyRecord);
    await custody.reload();
    expect(rejected).to.have.length(2);
    expect(custody.published().map(k => k.kid)).not.to.include('event-signing-forged');
  });

  it('even with a valid MAC, refuses a sealed key that does not open for the record, or a public key that is not its own', async () => {
    // The MAC is computed with the KEK here, to show the other two checks hold on their own.
    const kek = randomBytes(32);
    const store = new HistoryStore();
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const rejected: [string, KeyRecordRejection][] = [];
    const custody = custodyOf(store, kek, clock, rejected);
    await custody.init();
    const [a, b] = store.revisions as KeyRecord[];
    const withMac = (r: Omit<KeyRecord, 'mac'>): KeyRecord => ({ ...r, mac: recordMac(kek, r) });
    const { mac: _m, ...aRest } = a;
    // b's sealed key under a's record: the sealing context binds kid, purpose and algorithm.
    expect(custody.apply(withMac({ ...aRest, kid: 'moved', sealedPrivateKey: b.sealedPrivateKey }))).to.equal(false);
    // a's sealed key with the attacker's public key.
    expect(custody.apply(withMac({ ...aRest, publicJwk: ownKey(a.kid).jwk }))).to.equal(false);
    expect(rejected).to.deep.equal([
      ['moved', 'SEALED_KEY_UNOPENABLE'],
      [a.kid, 'PUBLIC_KEY_MISMATCH'],
    ]);
    // The last good record of a stays in force.
    expect(custody.published().find(k => k.kid === a.kid)?.publicJwk).to.deep.equal(a.publicJwk);
  });

  it('a real record copied with another status or expiry changes nothing, at once or after a restart', async () => {
    const kek = randomBytes(32);
    const store = new HistoryStore();
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const rejected: [string, KeyRecordRejection][] = [];
    const custody = custodyOf(store, kek, clock, rejected);
    await custody.init();
    const before = await custody.sign(SIGNER, 'access-token', data);
    const real = store.latest(before.kid);
    const tampered = { ...real, status: 'retired' as const, expiresAtMs: clock.now - 1 };
    await store.put(tampered);
    expect(custody.apply(tampered)).to.equal(false);
    expect(rejected).to.deep.equal([[real.kid, 'MAC_INVALID']]);
    expect((await custody.sign(SIGNER, 'access-token', data)).kid).to.equal(real.kid);
    expect(custody.published().find(k => k.kid === real.kid)?.status).to.equal('active');
    // A fresh custody finds the last good revision beneath the tampered one.
    const restarted = custodyOf(store, kek, clock);
    await restarted.init();
    expect((await restarted.sign(SIGNER, 'access-token', data)).kid).to.equal(real.kid);
  });

  it('refuses to bring a retired key back to active (an older genuine revision written again)', async () => {
    const kek = randomBytes(32);
    const store = new HistoryStore();
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const rejected: [string, KeyRecordRejection][] = [];
    const custody = custodyOf(store, kek, clock, rejected);
    await custody.init();
    const old = (await custody.sign(SIGNER, 'access-token', data)).kid;
    const activeRevision = store.latest(old);
    clock.now += 1_000;
    const { key } = await custody.rotate('access-token');
    expect(custody.apply(activeRevision)).to.equal(false);
    expect(rejected).to.deep.equal([[old, 'STATUS_ROLLBACK']]);
    expect((await custody.sign(SIGNER, 'access-token', data)).kid).to.equal(key.kid);
    // After a restart the replayed "active" revision is the newest for that kid: the newer
    // active key still wins and the old one is retired, so it leaves the key set in time.
    await store.put(activeRevision);
    const restarted = custodyOf(store, kek, clock);
    await restarted.init();
    expect((await restarted.sign(SIGNER, 'access-token', data)).kid).to.equal(key.kid);
    clock.now += 60_000 + 1_000;
    expect(restarted.published().map(k => k.kid)).not.to.include(old);
  });

  it("a store holding only another KEK's records stops the start with one line that names the cause and the way out", async () => {
    const store = new HistoryStore();
    const clock = { now: Date.now() };
    await custodyOf(store, randomBytes(32), clock).init();
    const rejected: [string, KeyRecordRejection][] = [];
    const err = await custodyOf(store, randomBytes(32), clock, rejected)
      .init()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(AeseError);
    expect((err as AeseError).code).to.equal('FAILED_PRECONDITION');
    const message = (err as AeseError).message;
    expect(message).to.match(/signing-keys bucket/);
    expect(message).to.match(/another deployment/);
    expect(message).to.include('NATS_URL');
    expect(message).to.include('.state/nats');
    expect(message).to.include('CRYPTO_KEK_FILE');
    expect(message).not.to.include('\n');
    // No per-record noise before it.
    expect(rejected).to.deep.equal([]);
    expect(store.revisions).to.have.length(KEY_PURPOSES.length);
  });

  it('event-signing keys stay published after their retirement period; access-token keys leave', async () => {
    const kek = randomBytes(32);
    const store = new HistoryStore();
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const custody = custodyOf(store, kek, clock);
    await custody.init();
    const event = await custody.sign(SIGNER, 'event-signing', data);
    const token = await custody.sign(SIGNER, 'access-token', data);
    await custody.rotate('event-signing');
    await custody.rotate('access-token');
    clock.now += 60_000 + 1;
    expect(custody.verify(event.kid, data, event.signature)).to.equal(true);
    expect(custody.verify(token.kid, data, token.signature)).to.equal(false);
    const published = custody.published().map(k => k.kid);
    expect(published).to.include(event.kid);
    expect(published).not.to.include(token.kid);
    // After a restart too.
    const restarted = custodyOf(store, kek, clock);
    await restarted.init();
    expect(restarted.verify(event.kid, data, event.signature)).to.equal(true);
    expect((await restarted.sign(SIGNER, 'event-signing', data)).kid).not.to.equal(event.kid);
  });
});
