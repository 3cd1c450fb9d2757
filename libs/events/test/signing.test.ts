import { expect } from 'chai';
import { generateKeyPairSync, sign } from 'node:crypto';
import type { JWK } from 'jose';
import { AeseError } from '@aese/errors';
import { EVENT_KEY_REFRESH_COOLDOWN_MS, EVENT_KEY_RETRY_AFTER_FAILURE_MS, JwksEventVerifier } from '../src/index.ts';

/** An event-signing key pair as crypto would publish it. */
function eventKey(kid: string): { jwk: JWK; sign(data: Buffer): Buffer } {
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    jwk: { ...(publicKey.export({ format: 'jwk' }) as JWK), kid, alg: 'ES256', use: 'sig' },
    sign: data => sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' }),
  };
}

/** A stand-in for crypto's GetJwks: a key list, reachable or not, counting the fetches. */
class Custodian {
  keys: JWK[] = [];
  up = true;
  fetches = 0;
  readonly fetch = async (): Promise<JWK[]> => {
    this.fetches++;
    if (!this.up) throw new AeseError('UNAVAILABLE', 'connect ECONNREFUSED');
    return [...this.keys];
  };
}

const data = Buffer.from('aese-control-event/v1\nsubject\ntype\n1\npayload');

async function outcome(p: Promise<boolean>): Promise<boolean | string> {
  return p.then(
    v => v,
    (e: unknown) => (e instanceof AeseError ? `AeseError ${e.code}` : `other ${String(e)}`),
  );
}

describe('JwksEventVerifier: false only when certain, UNAVAILABLE when the keys cannot be fetched', () => {
  it('throws UNAVAILABLE while crypto cannot be reached, then verifies once it can (no false verdict meanwhile)', async () => {
    const crypto = new Custodian();
    const key = eventKey('ev-1');
    crypto.keys = [key.jwk];
    crypto.up = false;
    const verifier = new JwksEventVerifier(crypto.fetch);
    expect(await outcome(verifier.verify('ev-1', data, key.sign(data)))).to.equal('AeseError UNAVAILABLE');
    // Inside the retry interval: refused at once, without asking crypto again.
    const before = crypto.fetches;
    expect(await outcome(verifier.verify('ev-1', data, key.sign(data)))).to.equal('AeseError UNAVAILABLE');
    expect(crypto.fetches).to.equal(before);
    crypto.up = true;
    await new Promise(r => setTimeout(r, EVENT_KEY_RETRY_AFTER_FAILURE_MS + 20));
    expect(await outcome(verifier.verify('ev-1', data, key.sign(data)))).to.equal(true);
  });

  it('answers false for a bad signature of a known key and for a kid absent from a fresh key set', async () => {
    const crypto = new Custodian();
    const key = eventKey('ev-1');
    const other = eventKey('ev-other');
    crypto.keys = [key.jwk];
    const verifier = new JwksEventVerifier(crypto.fetch);
    expect(await verifier.verify('ev-1', data, key.sign(data))).to.equal(true);
    expect(await verifier.verify('ev-1', data, other.sign(data))).to.equal(false);
    expect(await verifier.verify('ev-1', Buffer.from('other bytes'), key.sign(data))).to.equal(false);
    // A kid crypto does not publish: false once a fetch started after the call has answered.
    expect(await verifier.verify('ev-other', data, other.sign(data))).to.equal(false);
  });

  it('a key known from an earlier fetch keeps verifying while crypto is down', async () => {
    const crypto = new Custodian();
    const key = eventKey('ev-1');
    crypto.keys = [key.jwk];
    const verifier = new JwksEventVerifier(crypto.fetch);
    expect(await verifier.verify('ev-1', data, key.sign(data))).to.equal(true);
    crypto.up = false;
    expect(await verifier.verify('ev-1', data, key.sign(data))).to.equal(true);
    expect(await verifier.verify('ev-1', data, eventKey('x').sign(data))).to.equal(false);
  });

  it('a key published just after the last fetch is not refused: the call waits for a fresh fetch', async () => {
    const crypto = new Custodian();
    const first = eventKey('ev-1');
    crypto.keys = [first.jwk];
    const verifier = new JwksEventVerifier(crypto.fetch);
    expect(await verifier.verify('ev-1', data, first.sign(data))).to.equal(true);
    // A rotation right after that fetch: the new kid arrives inside the cooldown.
    const second = eventKey('ev-2');
    crypto.keys = [first.jwk, second.jwk];
    const started = Date.now();
    expect(await verifier.verify('ev-2', data, second.sign(data))).to.equal(true);
    expect(Date.now() - started).to.be.below(EVENT_KEY_REFRESH_COOLDOWN_MS + 1_000);
  });

  it('a flood of unknown kids costs at most one fetch per cooldown', async () => {
    const crypto = new Custodian();
    const key = eventKey('ev-1');
    crypto.keys = [key.jwk];
    const verifier = new JwksEventVerifier(crypto.fetch);
    const forged = eventKey('forged');
    const signature = forged.sign(data);
    const started = Date.now();
    const verdicts = await Promise.all(Array.from({ length: 500 }, (_, i) => verifier.verify(`forged-${i}`, data, signature)));
    const elapsed = Date.now() - started;
    expect(verdicts.every(v => v === false)).to.equal(true);
    expect(crypto.fetches).to.be.at.most(1 + Math.ceil(elapsed / EVENT_KEY_REFRESH_COOLDOWN_MS));
    expect(crypto.fetches).to.be.at.most(2);
    // Positive control: the genuine key verifies from a fetch already made.
    const fetches = crypto.fetches;
    expect(await verifier.verify('ev-1', data, key.sign(data))).to.equal(true);
    expect(crypto.fetches).to.equal(fetches);
  });
});
