import { generateKeyPairSync, sign } from 'node:crypto';
import { expect } from 'chai';
import type { NatsConnection } from 'nats';
import { AUDIT_STREAM, AuditLog, NatsAuditSink, auditHash, checkpointSignedBytes, cryptoAuditSigner, readAuditStream } from '@aese/events';
import type { AuditCheckpoint, AuditEvent } from '@aese/events';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { aese } from './support/cli.ts';
import type { CliResult } from './support/cli.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { onboardAs } from './support/onboarding.ts';
import { eventually } from '@aese/testing';

/** One stream message as an attacker with the JetStream administrator's rights sees it. */
interface Msg {
  readonly subject: string;
  readonly body: Record<string, unknown>;
}

const isCheckpoint = (m: Msg) => m.body['kind'] === 'checkpoint';
const event = (m: Msg) => m.body as unknown as AuditEvent;

/** Re-links a chain after its events were changed, as an attacker with SHA-256 would. */
function rehash(events: AuditEvent[]): AuditEvent[] {
  let prev = '0'.repeat(64);
  return events.map((e, i) => {
    const { hash: _h, ...rest } = { ...e, seq: i + 1, prevHash: prev };
    const hash = auditHash(rest);
    prev = hash;
    return { ...rest, hash };
  });
}

/** Polls (no fixed sleeps) until `check` holds, within a bound. */
async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  await eventually(check, timeoutMs, what);
}

describe('keyed audit trail: signed checkpoints and a gap-free stream (aese audit verify against a running mesh)', function () {
  this.timeout(180_000);
  let mesh: TestMesh;
  let admin: NatsConnection;
  let env: Record<string, string>;
  let pristine: Msg[];
  const writers: { nc: NatsConnection; crypto: MeshClient<CryptoServiceClient> }[] = [];
  /** Chains written by the test as real services (their own NATS identity, their own crypto signature). */
  const chains: Record<'a' | 'b' | 'c', string> = { a: '', b: '', c: '' };

  const verify = (...args: string[]): Promise<CliResult> => aese(['audit', 'verify', ...args], env);

  async function readAll(): Promise<Msg[]> {
    const { messages } = await readAuditStream(admin);
    return messages.map(m => ({ subject: m.subject, body: m.body as Record<string, unknown> }));
  }

  /** The administrator's other power: replace the whole stream with chosen contents (positions from 1). */
  async function rebuild(messages: readonly Msg[]): Promise<void> {
    const jsm = await admin.jetstreamManager();
    const { config } = await jsm.streams.info(AUDIT_STREAM);
    await jsm.streams.delete(AUDIT_STREAM);
    await jsm.streams.add(config);
    for (const m of messages) await admin.jetstream().publish(m.subject, Buffer.from(JSON.stringify(m.body)));
  }

  /** Positions (stream sequences) of the messages matching `pick` in the current stream. */
  async function positionsOf(pick: (m: Msg) => boolean): Promise<number[]> {
    const { messages } = await readAuditStream(admin);
    return messages.filter(m => pick({ subject: m.subject, body: m.body as Record<string, unknown> })).map(m => m.position);
  }

  async function deleteAt(positions: readonly number[]): Promise<void> {
    const jsm = await admin.jetstreamManager();
    for (const p of positions) await jsm.streams.deleteMessage(AUDIT_STREAM, p);
  }

  async function writeChain(identity: 'edge' | 'capability-exposure', events: number): Promise<string> {
    const nc = await mesh.natsConnect(identity);
    const crypto = createMeshClient(CryptoServiceClient, { address: mesh.env['CRYPTO_ADDR'], tls: mesh.tls(identity), serverId: mesh.id('crypto') });
    writers.push({ nc, crypto });
    const log = new AuditLog(
      identity,
      new NatsAuditSink(nc),
      err => {
        throw err;
      },
      { signer: cryptoAuditSigner(crypto), checkpointDelayMs: 50 },
    );
    for (let i = 1; i <= events; i++) {
      log.record({ actor: `as-${i}`, action: 't8.request', decision: 'deny', reason: 'TEST', detail: { i } });
      // Two checkpoints per chain: one mid-way, one at the head.
      if (i === Math.ceil(events / 2)) await log.flush();
    }
    await log.flush();
    const last = (await readAll()).filter(m => !isCheckpoint(m) && m.body['service'] === identity).pop();
    return event(last!).chain;
  }

  before(async () => {
    mesh = await startTestMesh({ extraEnv: { AESE_ISSUER: 'https://scef.test' } });
    env = {
      AESE_STATE_DIR: mesh.stateDir,
      AESE_TRUST_DOMAIN: mesh.trustDomain,
      CRYPTO_ADDR: mesh.env['CRYPTO_ADDR'],
      NATS_URL: mesh.nats.url,
    };
    admin = await mesh.natsConnect('nats-admin');
    // The services' own chains: authentication audits an onboarding, crypto a key rotation.
    await onboardAs(mesh, 'keyed-audit-as', ['3gpp-monitoring-event']);
    const rotated = await aese(['keys', 'rotate'], env);
    expect(rotated.code, rotated.stderr).to.equal(0);
    chains.a = await writeChain('edge', 6);
    chains.b = await writeChain('capability-exposure', 4);
    chains.c = await writeChain('edge', 4);
    // The services seal their chains by themselves (a moment after each burst).
    await until("every chain (the services' too) to be checkpointed up to its head", async () => {
      const all = await readAll();
      const heads = new Map(all.filter(m => !isCheckpoint(m)).map(m => [event(m).chain, event(m).seq]));
      const services = new Set(all.filter(m => !isCheckpoint(m)).map(m => event(m).service));
      return (
        services.has('crypto') &&
        services.has('authentication') &&
        [...heads].every(([chain, seq]) => all.some(m => isCheckpoint(m) && m.body['chain'] === chain && m.body['seq'] === seq))
      );
    });
    pristine = await readAll();
  });

  after(async () => {
    for (const w of writers) {
      w.crypto.close();
      await w.nc.close();
    }
    await admin?.close();
    await mesh?.stop();
  });

  afterEach(async () => {
    // Every test starts from the untouched trail: identical messages at identical positions.
    await rebuild(pristine);
  });

  it('positive control: the untouched trail (service chains and test chains, all checkpointed) verifies', async () => {
    const checkpointed = new Set(pristine.filter(isCheckpoint).map(m => `${String(m.body['service'])}`));
    expect([...checkpointed]).to.include.members(['crypto', 'authentication', 'edge', 'capability-exposure']);
    const res = await verify('--grace', '0');
    expect(res.code, res.stdout + res.stderr).to.equal(0);
    expect(res.stdout).to.match(/^audit trail intact: \d+ events in \d+ chains, \d+ checkpoints\n$/);
  });

  it('a mid-chain event removed and the rest re-hashed, in place: the hole and the signed heads give it away', async () => {
    const victims = await positionsOf(m => !isCheckpoint(m) && m.body['chain'] === chains.a && Number(m.body['seq']) >= 3);
    const rest = pristine.filter(m => !isCheckpoint(m) && m.body['chain'] === chains.a).map(event);
    const forged = rehash([...rest.slice(0, 2), ...rest.slice(3)]).slice(2);
    await deleteAt(victims);
    for (const e of forged) await admin.jetstream().publish(`aese.audit.v1.edge.${chains.a}`, Buffer.from(JSON.stringify(e)));
    const res = await verify();
    expect(res.code, res.stdout).to.equal(1);
    expect(res.stdout).to.match(/chain stream: DELETED: messages \d+/);
    expect(res.stdout).to.include(`chain ${chains.a}: CHECKPOINT_MISMATCH`);
    // The re-hashed chain itself is consistent: only the keyed checks see it.
    expect(res.stdout).not.to.include(`chain ${chains.a}: ALTERED`);
    expect(res.stdout).not.to.include(`chain ${chains.b}:`);
  });

  it('the same in a stream rebuilt by the administrator (no hole left): the signed checkpoints alone detect it', async () => {
    const a = pristine.filter(m => !isCheckpoint(m) && m.body['chain'] === chains.a);
    const rehashed = rehash([...a.slice(0, 2), ...a.slice(3)].map(event));
    let i = 0;
    const tampered = pristine.filter(m => m !== a[2]).map(m => (a.includes(m) ? { subject: m.subject, body: rehashed[i++] as unknown as Record<string, unknown> } : m));
    await rebuild(tampered);
    const res = await verify();
    expect(res.code, res.stdout).to.equal(1);
    expect(res.stdout).not.to.match(/DELETED|MISSING|ALTERED/);
    expect(res.stdout).to.include(`chain ${chains.a}: CHECKPOINT_MISMATCH`);
  });

  it('two events swapped and re-hashed (rebuilt stream): detected and named', async () => {
    const a = pristine.filter(m => !isCheckpoint(m) && m.body['chain'] === chains.a);
    const swapped = rehash([a[0], a[2], a[1], ...a.slice(3)].map(event));
    const tampered = pristine.map(m => (a.includes(m) ? { subject: m.subject, body: swapped[a.indexOf(m)] as unknown as Record<string, unknown> } : m));
    await rebuild(tampered);
    const res = await verify();
    expect(res.code, res.stdout).to.equal(1);
    expect(res.stdout).to.include(`chain ${chains.a}: CHECKPOINT_MISMATCH: event 3 signed at message`);
    expect(res.stdout).not.to.include(`chain ${chains.c}:`);
  });

  it('two events reordered in place (deleted and published again the other way round): detected and named', async () => {
    const [p2, p3] = await positionsOf(m => !isCheckpoint(m) && m.body['chain'] === chains.a && [2, 3].includes(Number(m.body['seq'])));
    const a = pristine.filter(m => !isCheckpoint(m) && m.body['chain'] === chains.a);
    await deleteAt([p2, p3]);
    for (const m of [a[2], a[1]]) await admin.jetstream().publish(m.subject, Buffer.from(JSON.stringify(m.body)));
    const res = await verify();
    expect(res.code, res.stdout).to.equal(1);
    expect(res.stdout).to.include(`chain ${chains.a}: OUT_OF_ORDER`);
    expect(res.stdout).to.match(/chain stream: DELETED/);
  });

  it('a whole chain dropped (its events and checkpoints): in place the holes show, rebuilt the later signed heads no longer match', async () => {
    const b = await positionsOf(m => m.body['chain'] === chains.b);
    await deleteAt(b);
    const inPlace = await verify();
    expect(inPlace.code, inPlace.stdout).to.equal(1);
    expect(inPlace.stdout).to.match(/chain stream: DELETED: messages \d+\.\.\d+ of \d+ were deleted/);

    await rebuild(pristine.filter(m => m.body['chain'] !== chains.b));
    const rebuilt = await verify();
    expect(rebuilt.code, rebuilt.stdout).to.equal(1);
    // Chain c was written after b: its signed positions moved.
    expect(rebuilt.stdout).to.include(`chain ${chains.c}: CHECKPOINT_MISMATCH`);
    expect(rebuilt.stdout).not.to.include(`chain ${chains.a}:`);

    // Dropping only the events and leaving the checkpoints names the chain itself.
    await rebuild(pristine.filter(m => isCheckpoint(m) || m.body['chain'] !== chains.b));
    const eventsOnly = await verify();
    expect(eventsOnly.code, eventsOnly.stdout).to.equal(1);
    expect(eventsOnly.stdout).to.include(`chain ${chains.b}: CHAIN_MISSING`);
  });

  it('the tail of a chain cut off (events its checkpoint covers): TRUNCATED, in place and rebuilt', async () => {
    const tail = await positionsOf(m => !isCheckpoint(m) && m.body['chain'] === chains.c && Number(m.body['seq']) >= 3);
    await deleteAt(tail);
    const inPlace = await verify();
    expect(inPlace.code, inPlace.stdout).to.equal(1);
    expect(inPlace.stdout).to.include(`chain ${chains.c}: TRUNCATED: signed up to event 4, only 2 left`);

    await rebuild(pristine.filter(m => isCheckpoint(m) || m.body['chain'] !== chains.c || Number(m.body['seq']) < 3));
    const rebuilt = await verify();
    expect(rebuilt.code, rebuilt.stdout).to.equal(1);
    expect(rebuilt.stdout).to.include(`chain ${chains.c}: TRUNCATED`);
    expect(rebuilt.stdout).not.to.match(/DELETED/);
  });

  it('a forged checkpoint (own key, real kid, a different head hash): FORGED_CHECKPOINT; the genuine checkpoints still verify', async () => {
    const a = pristine.filter(m => m.body['chain'] === chains.a);
    const genuine = a.filter(isCheckpoint).pop()!.body as unknown as AuditCheckpoint;
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forgedBody = { ...genuine, hash: 'f'.repeat(64), at: new Date().toISOString() };
    const forged: AuditCheckpoint = {
      ...forgedBody,
      signature: sign('sha256', checkpointSignedBytes(forgedBody), { key: privateKey, dsaEncoding: 'ieee-p1363' }).toString('base64url'),
    };
    await admin.jetstream().publish(`aese.audit.v1.edge.${chains.a}.checkpoint`, Buffer.from(JSON.stringify(forged)));
    const res = await verify();
    expect(res.code, res.stdout).to.equal(1);
    expect(res.stdout).to.match(new RegExp(`chain ${chains.a}: FORGED_CHECKPOINT: checkpoint at message \\d+ is not signed by a crypto audit-signing key`));
    expect(res.stdout).not.to.include(`chain ${chains.a}: CHECKPOINT_MISMATCH`);
  });

  it('a chain no checkpoint covers: tolerated within the grace period, UNSEALED after it', async () => {
    const fake = rehash([1, 2].map(i => ({ ...event(pristine.find(m => !isCheckpoint(m) && m.body['chain'] === chains.a)!), id: `fake-${i}`, chain: 'fake-chain' })));
    for (const e of fake) await admin.jetstream().publish('aese.audit.v1.edge.fake-chain', Buffer.from(JSON.stringify(e)));
    const within = await verify();
    expect(within.code, within.stdout).to.equal(0);
    expect(within.stdout).to.include('chain fake-chain: events 1..2 not yet covered by a checkpoint');
    const after = await verify('--grace', '0');
    expect(after.code, after.stdout).to.equal(1);
    expect(after.stdout).to.include('chain fake-chain: UNSEALED');
  });

  it('control for the fixture: the trail restored after each tampering is the untouched one and verifies', async () => {
    const res = await verify('--grace', '0');
    expect(res.code, res.stdout).to.equal(0);
    expect(await readAll()).to.deep.equal(pristine);
  });
});
