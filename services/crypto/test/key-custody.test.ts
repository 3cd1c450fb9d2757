import { expect } from 'chai';
import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient, KeyStatus } from '@aese/protos/crypto/v1';
import { KV_BUCKETS, kvKeys } from '@aese/nats';
import { KeyCustody } from '../src/domain/keys.ts';
import type { KeyRecord, KeyRecordStore } from '../src/domain/keys.ts';
import { MemoryStore } from './support.ts';
import { unseal } from '../src/domain/sealing.ts';
import { startCryptoService } from '../src/server.ts';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { onboardAs } from '../../../test/support/onboarding.ts';

describe('key custody (domain, frozen clock)', () => {
  const signer = 'spiffe://t/svc/authentication';
  const make = (store: KeyRecordStore, clock: { now: number }, kek = randomBytes(32)) =>
    new KeyCustody({
      store,
      kek,
      signers: { 'access-token': [signer], 'message-signing': [], 'event-signing': [], 'audit-signing': [] },
      algorithms: { 'access-token': 'ES256', 'message-signing': 'EdDSA', 'event-signing': 'ES256', 'audit-signing': 'ES256' },
      retirementMs: 15 * 60_000,
      now: () => clock.now,
    });

  it('keeps a rotated key verifying until its retirement window ends, then drops it', async () => {
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const custody = make(new MemoryStore(), clock);
    await custody.init();
    const data = Buffer.from('header.claims');
    const first = await custody.sign(signer, 'access-token', data);
    clock.now += 60_000;
    const { key, retiredKid } = await custody.rotate('access-token');
    expect(retiredKid).to.equal(first.kid);
    const second = await custody.sign(signer, 'access-token', data);
    expect(second.kid).to.equal(key.kid).and.not.equal(first.kid);
    expect(custody.verify(first.kid, data, first.signature)).to.equal(true);
    expect(custody.published().map(k => k.kid)).to.include(first.kid);
    clock.now += 15 * 60_000 - 1;
    expect(custody.verify(first.kid, data, first.signature)).to.equal(true);
    clock.now += 2;
    expect(custody.verify(first.kid, data, first.signature)).to.equal(false);
    expect(custody.published().map(k => k.kid)).not.to.include(first.kid);
    expect(custody.verify(second.kid, data, second.signature)).to.equal(true);
  });

  it('refuses a caller that is not a signer of the purpose, and tampered or zero signatures', async () => {
    const custody = make(new MemoryStore(), { now: Date.now() });
    await custody.init();
    const err = await custody.sign('spiffe://t/svc/edge', 'access-token', Buffer.from('x')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as AeseError).code).to.equal('CALLER_NOT_ALLOWED');
    const ok = await custody.sign(signer, 'access-token', Buffer.from('x'));
    const flipped = Buffer.from(ok.signature);
    flipped[10] = flipped[10] ^ 1;
    expect(custody.verify(ok.kid, Buffer.from('x'), flipped)).to.equal(false);
    expect(custody.verify(ok.kid, Buffer.from('x'), Buffer.alloc(64))).to.equal(false);
    expect(custody.verify(ok.kid, Buffer.from('x'), ok.signature.subarray(0, 32))).to.equal(false);
    expect(custody.verify(ok.kid, Buffer.from('x'), ok.signature)).to.equal(true);
  });

  it('delegates short-lived message-signing keys to allowed callers only, and publishes them', async () => {
    const clock = { now: Date.parse('2026-01-01T00:00:00Z') };
    const custody = new KeyCustody({
      store: new MemoryStore(),
      kek: randomBytes(32),
      signers: { 'access-token': [signer], 'message-signing': [], 'event-signing': [], 'audit-signing': [] },
      algorithms: { 'access-token': 'ES256', 'message-signing': 'ES256', 'event-signing': 'ES256', 'audit-signing': 'ES256' },
      retirementMs: 60_000,
      delegates: { 'message-signing': ['spiffe://t/svc/edge'] },
      delegationMs: 3_600_000,
      now: () => clock.now,
    });
    await custody.init();
    const denied = await custody.delegate(signer, 'message-signing').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((denied as AeseError).code).to.equal('CALLER_NOT_ALLOWED');
    const d = await custody.delegate('spiffe://t/svc/edge', 'message-signing');
    expect(d.notAfterMs).to.equal(clock.now + 3_600_000);
    const key = createPrivateKey({ key: d.pkcs8, format: 'der', type: 'pkcs8' });
    const { sign } = await import('node:crypto');
    const sig = sign('sha256', Buffer.from('resp'), { key, dsaEncoding: 'ieee-p1363' });
    expect(custody.verify(d.kid, Buffer.from('resp'), sig)).to.equal(true);
    clock.now = d.notAfterMs + 60_000 + 1;
    expect(custody.published().map(k => k.kid)).not.to.include(d.kid);
  });

  it('fails at start when the KEK cannot open the stored keys', async () => {
    const store = new MemoryStore();
    await make(store, { now: Date.now() }).init();
    const err = await make(store, { now: Date.now() }, randomBytes(32))
      .init()
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as AeseError).code).to.equal('FAILED_PRECONDITION');
  });
});

describe('crypto service over the mesh', () => {
  let mesh: TestMesh;
  before(async () => {
    mesh = await startTestMesh({ extraEnv: { AESE_ISSUER: 'https://scef.test' } });
  });
  after(async () => {
    await mesh?.stop();
  });

  it('a rotated key still verifies the tokens it signed; new tokens use the new key at once', async () => {
    const as = await onboardAs(mesh, 'rot-as', ['3gpp-monitoring-event']);
    const auth = createMeshClient(AuthenticationServiceClient, {
      address: mesh.env['AUTHENTICATION_ADDR'],
      tls: mesh.tls('edge'),
      serverId: mesh.id('authentication'),
    });
    const operator = createMeshClient(CryptoServiceClient, {
      address: mesh.env['CRYPTO_ADDR'],
      tls: mesh.tls('operator'),
      serverId: mesh.id('crypto'),
    });
    try {
      const issue = () => auth.issueToken({ certificateDer: as.der, grantType: 'client_credentials', clientId: '', scope: '' });
      const kidOf = (t: string) => (JSON.parse(Buffer.from(t.split('.')[0], 'base64url').toString()) as { kid: string }).kid;
      const before = (await issue()).accessToken;
      const rotated = await operator.rotateKey({ purpose: KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN, algorithm: 0 });
      expect(rotated.retiredKid).to.equal(kidOf(before));
      const after = (await issue()).accessToken;
      expect(kidOf(after)).to.equal(rotated.key!.kid);
      expect((await auth.verifyToken({ token: before, certificateDer: as.der })).scsAsId).to.equal('rot-as');
      expect((await auth.verifyToken({ token: after, certificateDer: as.der })).scsAsId).to.equal('rot-as');
      const { keys } = await operator.getJwks({});
      const old = keys.find(k => k.kid === kidOf(before))!;
      expect(old.status).to.equal(KeyStatus.KEY_STATUS_RETIRED);
      expect(old.expiresAtMs).to.be.greaterThan(Date.now() + 10 * 60_000);
      // Only the operator may rotate.
      const asAuth = createMeshClient(CryptoServiceClient, {
        address: mesh.env['CRYPTO_ADDR'],
        tls: mesh.tls('authentication'),
        serverId: mesh.id('crypto'),
      });
      const denied = await asAuth.rotateKey({ purpose: KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN, algorithm: 0 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      asAuth.close();
      expect((denied as AeseError).code).to.equal('CALLER_NOT_ALLOWED');
    } finally {
      auth.close();
      operator.close();
    }
  });

  it('the KV holds no private key in clear text; each sealed key opens only with the KEK', async () => {
    const nc = await mesh.natsConnect('crypto');
    try {
      const kv = await nc.jetstream().views.kv(KV_BUCKETS.signingKeys);
      const kek = Buffer.from(readFileSync(mesh.env['CRYPTO_KEK_FILE'], 'utf8').trim(), 'base64');
      let count = 0;
      for (const kid of await kvKeys(kv)) {
        const raw = Buffer.from((await kv.get(kid))!.value);
        const text = raw.toString('utf8');
        const record = JSON.parse(text) as KeyRecord;
        expect(text).not.to.match(/PRIVATE KEY/);
        expect(record.publicJwk).not.to.have.property('d');
        const pkcs8 = unseal(kek, record.sealedPrivateKey, `aese-signing-key:${record.kid}:${record.purpose}:${record.alg}`);
        const priv = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
        const d = (priv.export({ format: 'jwk' }) as { d: string }).d;
        // The private scalar appears in no encoding in the stored bytes.
        for (const enc of [d, Buffer.from(d, 'base64url').toString('base64'), Buffer.from(d, 'base64url').toString('hex')]) {
          expect(text).not.to.include(enc);
        }
        expect(raw.includes(Buffer.from(d, 'base64url'))).to.equal(false);
        expect(raw.includes(pkcs8)).to.equal(false);
        // The sealed key is the private half of the published key.
        const pub = createPublicKey(priv).export({ format: 'jwk' }) as { x: string };
        expect(pub.x).to.equal(record.publicJwk['x']);
        expect(() => unseal(randomBytes(32), record.sealedPrivateKey, `aese-signing-key:${record.kid}:${record.purpose}:${record.alg}`)).to.throw(AeseError);
        count++;
      }
      expect(count).to.be.at.least(3);
    } finally {
      await nc.close();
    }
  });

  it('a crypto replica with the wrong KEK refuses to start', async () => {
    const wrong = join(mesh.stateDir, 'wrong-kek');
    writeFileSync(wrong, randomBytes(32).toString('base64'), { mode: 0o600 });
    const err = await startCryptoService({ ...mesh.env, CRYPTO_KEK_FILE: wrong, PORT: '0' }, createLogger({ service: 'crypto', level: 'silent' })).then(
      s => s.stop().then(() => undefined),
      (e: unknown) => e,
    );
    expect((err as AeseError).code).to.equal('FAILED_PRECONDITION');
  });
});
