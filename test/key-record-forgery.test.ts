import { expect } from 'chai';
import { generateKeyPairSync, randomBytes, randomUUID, sign } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import type { KV, NatsConnection } from 'nats';
import { startCryptoService } from '@aese/crypto-service';
import { AeseError } from '@aese/errors';
import { readAuditTrail, signedBytes } from '@aese/events';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import { KV_BUCKETS } from '@aese/nats';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient, KeyStatus } from '@aese/protos/crypto/v1';
import { POLICY_BUNDLE_TYPE, POLICY_SIGNATURE_SUBJECT } from '../services/authorization/src/domain/policy-administration.ts';
import { authorizationClient, eventually, request, TEST_GRANTS, UE } from '../services/authorization/test/support.ts';
import type { AuthorizationClient } from '../services/authorization/test/support.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { onboardAs } from './support/onboarding.ts';

/**
 * Issue 7, item 2 (key records): an insider with crypto's NATS rights writes key records into
 * the signing-keys bucket. Crypto applies only records whose MAC (keyed from the KEK) verifies,
 * whose sealed key opens under the KEK and matches the public key: none of these is applied,
 * published, or trusted to sign anything that decides.
 */
describe('forged key records in the signing-keys bucket', function () {
  this.timeout(120_000);
  let mesh: TestMesh;
  let operatorCrypto: MeshClient<CryptoServiceClient>;
  let operatorPolicies: AuthorizationClient;
  let pdp: AuthorizationClient;
  let asCrypto: NatsConnection;
  let keys: KV;

  const jwks = async () => (await operatorCrypto.getJwks({})).keys;
  const rejectionLogged = (kid: string, reason: string, from: number) =>
    mesh.logs.slice(from).some(l => l.includes('"service":"crypto"') && l.includes(`key record ${kid} `) && l.includes(reason));

  before(async () => {
    mesh = await startTestMesh({ extraEnv: { AESE_ISSUER: 'https://scef.test' } });
    operatorCrypto = createMeshClient(CryptoServiceClient, { address: mesh.env['CRYPTO_ADDR'], tls: mesh.tls('operator'), serverId: mesh.id('crypto') });
    operatorPolicies = authorizationClient(mesh, 'operator');
    pdp = authorizationClient(mesh, 'capability-exposure');
    const current = await operatorPolicies.getPolicies({});
    await operatorPolicies.applyPolicies({ policies: current.policies, entitiesJson: JSON.stringify(TEST_GRANTS), expectedVersion: current.version });
    asCrypto = await mesh.natsConnect('crypto');
    keys = await asCrypto.jetstream().views.kv(KV_BUCKETS.signingKeys, { bindOnly: true });
  });
  after(async () => {
    operatorCrypto?.close();
    operatorPolicies?.close();
    pdp?.close();
    await asCrypto?.close();
    await mesh?.stop();
  });

  const activeKid = async (purpose: KeyPurpose): Promise<string> => {
    const k = (await jwks()).find(x => x.purpose === purpose && x.status === KeyStatus.KEY_STATUS_ACTIVE);
    expect(k, `an active key of purpose ${purpose}`).to.not.equal(undefined);
    return k!.kid;
  };
  const storedRecord = async (kid: string): Promise<Record<string, unknown>> => JSON.parse(new TextDecoder().decode((await keys.get(kid))!.value)) as Record<string, unknown>;
  const put = async (kid: string, value: unknown) => {
    await keys.put(kid, new TextEncoder().encode(JSON.stringify(value)));
  };

  it("a record with the insider's own P-256 key (retired, unexpired) is never applied or published, verifies nothing, and a policy version signed with it decides nothing", async () => {
    const real = await storedRecord(await activeKid(KeyPurpose.KEY_PURPOSE_EVENT_SIGNING));
    const kid = `event-signing-${new Date().toISOString().slice(0, 10)}-${randomUUID().slice(0, 8)}`;
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const forged = {
      ...real,
      kid,
      status: 'retired',
      createdAtMs: Date.now() - 60_000,
      expiresAtMs: Date.now() + 3_600_000,
      publicJwk: { ...(publicKey.export({ format: 'jwk' }) as Record<string, string>), kid, alg: 'ES256', use: 'sig' },
      mac: randomBytes(32).toString('base64url'),
    };
    let mark = mesh.logs.length;
    await put(kid, forged);
    await eventually('crypto to refuse the forged record', () => rejectionLogged(kid, 'MAC_INVALID', mark));

    // Not published, and crypto's own Verify refuses what the forged key signs.
    expect((await jwks()).map(k => k.kid)).not.to.include(kid);
    // A place authorization owns (crypto signs for the caller's own places only).
    const data = Buffer.from('aese-control-event/v1\nkv.aese_policies.current\n');
    const forgedSignature = sign('sha256', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
    expect((await operatorCrypto.verify({ kid, data, signature: forgedSignature })).valid).to.equal(false);
    // Positive control: a signature by a real key verifies through the same RPC.
    const cryptoAsAuthorization = createMeshClient(CryptoServiceClient, { address: mesh.env['CRYPTO_ADDR'], tls: mesh.tls('authorization'), serverId: mesh.id('crypto') });
    try {
      const genuine = await cryptoAsAuthorization.sign({ purpose: KeyPurpose.KEY_PURPOSE_EVENT_SIGNING, data });
      expect((await operatorCrypto.verify({ kid: genuine.kid, data, signature: genuine.signature })).valid).to.equal(true);
    } finally {
      cryptoAsAuthorization.close();
    }
    // One audit event names the record.
    const asOperator = await mesh.natsConnect('operator');
    try {
      await eventually('the rejection in the audit trail', async () =>
        (await readAuditTrail(asOperator)).some(e => e.reason === 'KEY_RECORD_REJECTED' && e.detail?.['kid'] === kid),
      );
    } finally {
      await asOperator.close();
    }

    // A policy version granting everything, signed with the forged key, written by an insider
    // with the authorization service's NATS rights.
    const before = await operatorPolicies.getPolicies({});
    expect((await pdp.decide(request({ targets: [UE.stranger] }))).allowed).to.equal(false);
    await writePolicy(before.version + 1, '@id("allow-all") permit (principal, action, resource);', kid, privateKey);
    mark = mesh.logs.length;
    await eventually('authorization to refuse the forged policy version', () =>
      mesh.logs.slice(mark).some(l => l.includes('"service":"authorization"') && l.includes('ignored a stored policy version') && l.includes('BAD_SIGNATURE')),
    );
    expect((await operatorPolicies.getPolicies({})).version).to.equal(before.version);
    expect((await pdp.decide(request({ targets: [UE.stranger] }))).allowed).to.equal(false);
    expect((await pdp.decide(request())).allowed).to.equal(true);

    // After restarts the record is still refused at load, and the policy still not applied.
    mark = mesh.logs.length;
    await mesh.restart('crypto');
    expect(rejectionLogged(kid, 'MAC_INVALID', mark)).to.equal(true);
    expect((await jwks()).map(k => k.kid)).not.to.include(kid);
    await mesh.restart('authorization');
    expect((await operatorPolicies.getPolicies({})).version).to.equal(before.version);
    expect((await pdp.decide(request({ targets: [UE.stranger] }))).allowed).to.equal(false);
    // Put the genuine version back on top, so later tests start from a clean store.
    await operatorPolicies.applyPolicies({ policies: before.policies, entitiesJson: before.entitiesJson, expectedVersion: before.version });
  });

  it('a real record copied with another status or expiry changes nothing, before or after a restart', async () => {
    const as = await onboardAs(mesh, 'forgery-as', ['3gpp-monitoring-event']);
    const auth = createMeshClient(AuthenticationServiceClient, { address: mesh.env['AUTHENTICATION_ADDR'], tls: mesh.tls('edge'), serverId: mesh.id('authentication') });
    try {
      const tokenKid = await activeKid(KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN);
      const eventKid = await activeKid(KeyPurpose.KEY_PURPOSE_EVENT_SIGNING);
      const tokenRecord = await storedRecord(tokenKid);
      const eventRecord = await storedRecord(eventKid);
      const mark = mesh.logs.length;
      // Withdraw the token key (retired, expired) and shorten the event key's life.
      await put(tokenKid, { ...tokenRecord, status: 'retired', expiresAtMs: Date.now() - 1_000 });
      await put(eventKid, { ...eventRecord, status: 'delegated', expiresAtMs: Date.now() + 1_000 });
      await eventually('crypto to refuse both copies', () => rejectionLogged(tokenKid, 'MAC_INVALID', mark) && rejectionLogged(eventKid, 'MAC_INVALID', mark));

      const check = async () => {
        const published = await jwks();
        const token = published.find(k => k.kid === tokenKid);
        const event = published.find(k => k.kid === eventKid);
        expect(token?.status).to.equal(KeyStatus.KEY_STATUS_ACTIVE);
        expect(token?.expiresAtMs).to.equal(0);
        expect(event?.status).to.equal(KeyStatus.KEY_STATUS_ACTIVE);
        const issued = await auth.issueToken({ certificateDer: as.der, grantType: 'client_credentials', clientId: '', scope: '' });
        const header = JSON.parse(Buffer.from(issued.accessToken.split('.')[0], 'base64url').toString()) as { kid: string };
        expect(header.kid).to.equal(tokenKid);
        expect((await auth.verifyToken({ token: issued.accessToken, certificateDer: as.der })).scsAsId).to.equal('forgery-as');
      };
      await check();
      // The bucket's newest values are the tampered copies: a restart finds the good revisions beneath.
      await mesh.restart('crypto');
      await check();
    } finally {
      auth.close();
    }
  });

  it('positive control: a real rotation is applied and published, and what the new key signs decides', async () => {
    const old = await activeKid(KeyPurpose.KEY_PURPOSE_EVENT_SIGNING);
    const rotated = await operatorCrypto.rotateKey({ purpose: KeyPurpose.KEY_PURPOSE_EVENT_SIGNING, algorithm: 0 });
    expect(rotated.retiredKid).to.equal(old);
    const published = await jwks();
    expect(published.find(k => k.kid === rotated.key!.kid)?.status).to.equal(KeyStatus.KEY_STATUS_ACTIVE);
    expect(published.find(k => k.kid === old)?.status).to.equal(KeyStatus.KEY_STATUS_RETIRED);
    // The stored record of the new key passes the checks at load too.
    const mark = mesh.logs.length;
    await mesh.restart('crypto');
    expect(mesh.logs.slice(mark).some(l => l.includes('KEY_RECORD_REJECTED') || l.includes(`key record ${rotated.key!.kid} `))).to.equal(false);
    expect((await jwks()).map(k => k.kid)).to.include(rotated.key!.kid);
    const before = await operatorPolicies.getPolicies({});
    const applied = await operatorPolicies.applyPolicies({ policies: before.policies, entitiesJson: before.entitiesJson, expectedVersion: before.version });
    expect(applied.version).to.equal(before.version + 1);
    const stored = await policyRecord();
    expect(stored['kid']).to.equal(rotated.key!.kid);
    await eventually('the new version to decide', async () => (await pdp.decide(request())).policyVersion === applied.version);
  });

  it('a crypto replica whose KEK opens none of the stored records stops with one line naming the cause and the way out', async () => {
    const wrong = join(mesh.stateDir, 'another-kek');
    writeFileSync(wrong, randomBytes(32).toString('base64'), { mode: 0o600 });
    const lines: string[] = [];
    const logger = createLogger({ service: 'crypto', level: 'info', destination: { write: (l: string) => void lines.push(l) } });
    const err = await startCryptoService({ ...mesh.env, CRYPTO_KEK_FILE: wrong, PORT: '0' }, logger).then(
      s => s.stop().then(() => undefined),
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(AeseError);
    expect((err as AeseError).code).to.equal('FAILED_PRECONDITION');
    const message = (err as AeseError).message;
    expect(message).to.include('signing-keys bucket').and.include('another deployment').and.include('NATS_URL').and.include('CRYPTO_KEK_FILE');
    expect(message).not.to.include('sealed key cannot be opened');
    // No line per record before it: the one error is the whole story.
    expect(lines.filter(l => l.includes('key record '))).to.deep.equal([]);
    // Positive control: the right KEK starts a second replica.
    const replica = await startCryptoService({ ...mesh.env, PORT: '0' }, createLogger({ service: 'crypto', level: 'silent' }));
    await replica.stop();
  });

  async function policyKv(nc: NatsConnection): Promise<KV> {
    return nc.jetstream().views.kv(KV_BUCKETS.policies, { bindOnly: true });
  }

  async function policyRecord(): Promise<Record<string, unknown>> {
    const nc = await mesh.natsConnect('authorization');
    try {
      return JSON.parse(new TextDecoder().decode((await (await policyKv(nc)).get('current'))!.value)) as Record<string, unknown>;
    } finally {
      await nc.close();
    }
  }

  /** Writes a policy version signed with a key of the test's own, as the stored format has it. */
  async function writePolicy(version: number, policies: string, kid: string, key: KeyObject): Promise<void> {
    const nc = await mesh.natsConnect('authorization');
    try {
      const kv = await policyKv(nc);
      const revision = (await kv.status()).streamInfo.state.last_seq + 1;
      const payload = JSON.stringify({ policies, entities: [], appliedAtMs: Date.now() });
      const bytes = signedBytes(POLICY_SIGNATURE_SUBJECT, POLICY_BUNDLE_TYPE, version, Buffer.from(`${revision}\n${payload}`));
      const signature = sign('sha256', bytes, { key, dsaEncoding: 'ieee-p1363' }).toString('base64url');
      await kv.put('current', new TextEncoder().encode(JSON.stringify({ version, revision, payload, kid, signature })));
    } finally {
      await nc.close();
    }
  }
});
