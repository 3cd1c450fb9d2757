import { generateKeyPairSync, sign } from 'node:crypto';
import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import { AuditLog, verifyKeyedAuditTrail } from '../src/index.ts';
import type { AuditCheckpoint, AuditEvent, AuditSink, AuditStreamContents, AuditVerificationKey } from '../src/index.ts';

/** An audit stream in memory: positions from 1, like JetStream's. */
class MemorySink implements AuditSink {
  readonly messages: { position: number; body: AuditEvent | AuditCheckpoint }[] = [];
  async write(event: AuditEvent): Promise<number> {
    this.messages.push({ position: this.messages.length + 1, body: event });
    return this.messages.length;
  }
  async writeCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    this.messages.push({ position: this.messages.length + 1, body: checkpoint });
  }
  contents(): AuditStreamContents {
    const now = Date.now();
    return {
      firstSeq: 1,
      lastSeq: this.messages.length,
      messages: this.messages.map(m => ({ position: m.position, storedAtMs: now, subject: 'aese.audit.v1.test', body: m.body })),
    };
  }
  checkpoints(): AuditCheckpoint[] {
    return this.messages.map(m => m.body).filter((b): b is AuditCheckpoint => (b as AuditCheckpoint).kind === 'checkpoint');
  }
}

/** A real P-256 signer standing in for crypto's audit-signing key. */
function p256(kid: string): { signer: { sign(d: Uint8Array): Promise<{ kid: string; signature: Uint8Array }> }; key: AuditVerificationKey } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    signer: { sign: async data => ({ kid, signature: sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }) }) },
    key: { kid, alg: 'ES256', jwk: publicKey.export({ format: 'jwk' }) },
  };
}

const record = { actor: 'as-1', action: 't8.request', decision: 'deny', reason: 'TEST' } as const;
const opts = { nowMs: Date.now(), graceMs: 60_000 };

describe('audit checkpoints (AuditLog with a signer, verifyKeyedAuditTrail)', () => {
  it('one checkpoint per burst, signed over the head and its position; the trail verifies with the key and not without it', async () => {
    const sink = new MemorySink();
    const { signer, key } = p256('audit-1');
    const log = new AuditLog(
      'edge',
      sink,
      err => {
        throw err;
      },
      { signer, checkpointDelayMs: 60_000 },
    );
    for (let i = 0; i < 20; i++) log.record(record);
    await log.flush();
    const [cp, ...more] = sink.checkpoints();
    expect(more).to.deep.equal([]);
    expect(cp).to.include({ service: 'edge', seq: 20, position: 20, kid: 'audit-1' });
    expect(verifyKeyedAuditTrail(sink.contents(), new Map([[key.kid, key]]), opts)).to.deep.include({ events: 20, checkpoints: 1, breaks: [], unsealed: [] });
    // Negative: another key under the same kid is a forgery.
    const other = p256('audit-1').key;
    const forged = verifyKeyedAuditTrail(sink.contents(), new Map([[other.kid, other]]), opts);
    expect(forged.breaks.map(b => b.problem)).to.deep.equal(['FORGED_CHECKPOINT']);
    // A second flush with nothing new writes no second checkpoint.
    await log.flush();
    expect(sink.checkpoints()).to.have.length(1);
  });

  it('a crypto outage delays only the checkpoint: every event is written, flush resolves, the head is signed once crypto is back', async () => {
    const sink = new MemorySink();
    const { signer, key } = p256('audit-2');
    let down = true;
    const errors: unknown[] = [];
    const log = new AuditLog('edge', sink, err => errors.push(err), {
      signer: { sign: async d => (down ? Promise.reject(new AeseError('UNAVAILABLE', 'crypto is down')) : signer.sign(d)) },
      checkpointDelayMs: 60_000,
    });
    for (let i = 0; i < 5; i++) log.record(record);
    await log.flush();
    expect(sink.messages).to.have.length(5);
    expect(sink.checkpoints()).to.deep.equal([]);
    expect(errors.map(e => (e as AeseError).code)).to.deep.equal(['UNAVAILABLE']);
    // Not yet sealed: within the grace period a note, beyond it a break.
    expect(verifyKeyedAuditTrail(sink.contents(), new Map([[key.kid, key]]), opts).unsealed).to.have.length(1);
    expect(verifyKeyedAuditTrail(sink.contents(), new Map([[key.kid, key]]), { nowMs: Date.now() + 120_000, graceMs: 60_000 }).breaks.map(b => b.problem)).to.deep.equal([
      'UNSEALED',
    ]);
    down = false;
    await log.flush();
    expect(sink.checkpoints().map(c => c.seq)).to.deep.equal([5]);
    expect(verifyKeyedAuditTrail(sink.contents(), new Map([[key.kid, key]]), opts).breaks).to.deep.equal([]);
  });
});
