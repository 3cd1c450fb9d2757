import { randomBytes } from 'node:crypto';
import { expect } from 'chai';
import type { AeseError } from '@aese/errors';
import {
  checkpointSignedBytes,
  CONTROL_SUBJECTS,
  networkEventSubject,
  notificationOutcomeSubject,
  notificationSubject,
  signedBytes,
  TOKEN_REVOCATIONS_SUBJECT,
} from '@aese/events';
import { KV_BUCKETS } from '@aese/nats';
import { SIGNED_PLACE_OWNERS } from '@aese/nats-trust';
import { KeyCustody } from '../src/domain/keys.ts';
import { MemoryStore } from './support.ts';
import { auditCheckpointRule, eventPlaceRule } from '../src/domain/signing-rules.ts';

const svc = (name: string): string => `spiffe://t/svc/${name}`;
const ALL = ['authentication', 'authorization', 'capability-exposure', 'crypto', 'edge', 'replay-guard'].map(svc);

/**
 * A service allowed the event-signing key still signs only for the places it owns, and audit
 * checkpoints only for its own chains: the signature then says who wrote the record, so a
 * compromised capability exposure cannot sign registry entries, revocations or policies.
 */
describe('crypto signs only for the caller’s own places (content rules)', () => {
  let custody: KeyCustody;
  before(async () => {
    custody = new KeyCustody({
      store: new MemoryStore(),
      kek: randomBytes(32),
      signers: { 'access-token': [], 'message-signing': [], 'event-signing': ALL, 'audit-signing': ALL },
      algorithms: { 'access-token': 'ES256', 'message-signing': 'ES256', 'event-signing': 'ES256', 'audit-signing': 'ES256' },
      retirementMs: 60_000,
      contentRules: { 'event-signing': eventPlaceRule(SIGNED_PLACE_OWNERS), 'audit-signing': auditCheckpointRule },
    });
    await custody.init();
  });

  const outcome = (caller: string, purpose: 'event-signing' | 'audit-signing', data: Uint8Array): Promise<string> =>
    custody.sign(caller, purpose, data).then(
      () => 'signed',
      (err: AeseError) => err.code,
    );
  const event = (place: string): Uint8Array => signedBytes(place, 'aese.test.v1.Probe', 7, Buffer.from('payload'));

  const CASES: [string, string, string][] = [
    [CONTROL_SUBJECTS.revocations, 'authentication', 'an AS revocation'],
    [TOKEN_REVOCATIONS_SUBJECT, 'authentication', 'a token revocation'],
    [`kv.${KV_BUCKETS.applicationServers}`, 'authentication', 'a registry record'],
    ['kv.aese_policies.current', 'authorization', 'a policy version'],
    [`kv.${KV_BUCKETS.subscriptions}`, 'capability-exposure', 'a subscription'],
    [notificationSubject('some-as'), 'capability-exposure', 'a notification request'],
    [notificationOutcomeSubject('some-as'), 'edge', 'a notification delivery outcome'],
    [networkEventSubject('event.location'), 'capability-exposure', 'a network event'],
    [CONTROL_SUBJECTS.keys, 'crypto', 'a key rotation'],
  ];
  for (const [place, owner, what] of CASES) {
    it(`${what} (${place}): only ${owner}`, async () => {
      const got = Object.fromEntries(await Promise.all(ALL.map(async c => [c, await outcome(c, 'event-signing', event(place))] as const)));
      const want = Object.fromEntries(ALL.map(c => [c, c === svc(owner) ? 'signed' : 'CALLER_NOT_ALLOWED']));
      expect(got).to.deep.equal(want);
    });
  }

  it('refuses a place nobody owns and data that is not an event', async () => {
    expect(await outcome(svc('authentication'), 'event-signing', event('kv.aese_policies_x'))).to.equal('CALLER_NOT_ALLOWED');
    expect(await outcome(svc('authentication'), 'event-signing', Buffer.from('anything at all'))).to.equal('CALLER_NOT_ALLOWED');
    expect(await outcome(svc('authorization'), 'event-signing', event('kv.aese_policies'))).to.equal('signed');
  });

  it('signs an audit checkpoint only for the caller’s own chains', async () => {
    const checkpoint = (service: string): Buffer => checkpointSignedBytes({ service, chain: 'c1', seq: 3, hash: 'h'.repeat(64), position: 9, at: '2026-12-01T00:00:00Z' });
    expect(await outcome(svc('edge'), 'audit-signing', checkpoint('edge'))).to.equal('signed');
    expect(await outcome(svc('edge'), 'audit-signing', checkpoint('crypto'))).to.equal('CALLER_NOT_ALLOWED');
    expect(await outcome(svc('edge'), 'audit-signing', Buffer.from('["something else","edge"]'))).to.equal('CALLER_NOT_ALLOWED');
  });
});
