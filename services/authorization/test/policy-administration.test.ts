import { expect } from 'chai';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateKeyPairSync, sign } from 'node:crypto';
import type { KV, NatsConnection } from 'nats';
import { readAuditTrail, signedBytes } from '@aese/events';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { startAuthorizationService } from '@aese/authorization-service';
import { createLogger } from '@aese/logger';
import { connectNatsAs, startNatsServer } from '@aese/testing';
import { policyApply, policyShow } from '@aese/cli';
import { startTestMesh } from '../../../test/support/mesh.ts';
import { POLICY_BUNDLE_TYPE, POLICY_SIGNATURE_SUBJECT } from '../src/domain/policy-administration.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { authorizationClient, eventually, failure, request, TEST_GRANTS, UE, UE_VALUES } from './support.ts';
import type { AuthorizationClient, GrantJson } from './support.ts';

/** A policy the schema does not allow: Application has no attribute `tier`. */
const UNDECLARED_ATTRIBUTE = `
@id("permit-gold-tier")
permit (principal is Aese::Application, action, resource)
when { principal.tier == "gold" };
`;

describe('authorization policy administration (versions in JetStream KV, validation, replicas)', function () {
  // Starting a whole mesh on a shared two-core machine can take longer than one test.
  this.timeout(60_000);
  let mesh: TestMesh;
  let operator: AuthorizationClient;
  let pdp: AuthorizationClient;
  let basePolicies: string;

  before(async () => {
    mesh = await startTestMesh();
    operator = authorizationClient(mesh, 'operator');
    pdp = authorizationClient(mesh, 'capability-exposure');
    const current = await operator.getPolicies({});
    basePolicies = current.policies;
    await operator.applyPolicies({ policies: basePolicies, entitiesJson: JSON.stringify(TEST_GRANTS), expectedVersion: current.version });
  });
  after(async () => {
    operator?.close();
    pdp?.close();
    await mesh?.stop();
  });

  const version = async (): Promise<number> => (await operator.getPolicies({})).version;
  const grantsWith = (edit: (grants: typeof TEST_GRANTS) => void): string => {
    const copy = structuredClone(TEST_GRANTS);
    edit(copy);
    return JSON.stringify(copy);
  };

  it('refuses a policy set that fails schema validation and keeps the last-known-good one', async () => {
    const before = await operator.getPolicies({});
    const allowed = await pdp.decide(request());
    expect(allowed.allowed).to.equal(true);
    const err = await failure(operator.applyPolicies({ policies: `${basePolicies}\n${UNDECLARED_ATTRIBUTE}`, entitiesJson: before.entitiesJson, expectedVersion: before.version }));
    expect(err.code).to.equal('INVALID_INPUT');
    expect(err.message).to.include('schema validation').and.include('tier');
    const after = await operator.getPolicies({});
    expect(after.version).to.equal(before.version);
    expect(after.policies).to.equal(before.policies);
    expect(await pdp.decide(request())).to.deep.equal(allowed);
    // Positive control: the same base, valid, is accepted.
    const ok = await operator.applyPolicies({ policies: basePolicies, entitiesJson: before.entitiesJson, expectedVersion: before.version });
    expect(ok.version).to.equal(before.version + 1);
  });

  it('refuses malformed policy sets: parse errors, missing or duplicate @id, templates', async () => {
    const v = await version();
    const grants = JSON.stringify(TEST_GRANTS);
    const bad: [string, string, string][] = [
      ['parse error', 'permit (principal, action, resource) when { principal ==', 'do not parse'],
      ['no @id', 'permit (principal, action, resource);', '@id'],
      ['duplicate @id', '@id("x") forbid (principal, action, resource);\n@id("x") forbid (principal, action, resource);', 'duplicate'],
      ['template', '@id("t") permit (principal == ?principal, action, resource);', 'template'],
      ['empty', '  ', 'required'],
      ['@denyCause on a permit', '@id("p") @denyCause("NOPE") permit (principal, action, resource);', 'forbid'],
    ];
    for (const [what, policies, hint] of bad) {
      const err = await failure(operator.applyPolicies({ policies, entitiesJson: grants, expectedVersion: v }));
      expect(err.code, what).to.equal('INVALID_INPUT');
      expect(err.message, what).to.include(hint);
    }
    expect(await version()).to.equal(v);
  });

  it('refuses grants that do not conform to the schema or to the grant rules', async () => {
    const v = await version();
    const bad: [string, string, string][] = [
      ['not JSON', '{', 'not valid JSON'],
      ['not an array', '{}', 'array'],
      ['wrong attribute type', grantsWith(g => (g[1].attrs['rateLimitPerSecond'] = 'fast')), 'rateLimitPerSecond'],
      ['undeclared entity type', JSON.stringify([{ uid: { type: 'Aese::Superuser', id: 'x' }, attrs: {}, parents: [] }]), 'Superuser'],
      ['missing grant field', grantsWith(g => delete (g[1].tags!['3gpp-monitoring-event'] as Partial<GrantJson>).anyTarget), 'anyTarget'],
      ['unknown operation', grantsWith(g => g[1].tags!['3gpp-monitoring-event'].operations.push('execute')), 'operation'],
      ['malformed msisdn', grantsWith(g => g[1].tags!['3gpp-monitoring-event'].targets.push('msisdn:+4917')), 'msisdn'],
      ['unknown granularity', grantsWith(g => (g[1].tags!['3gpp-monitoring-event'].locationGranularity = 'street')), 'locationGranularity'],
      ['misspelt API', grantsWith(g => (g[1].tags = { '3gpp-monitoring-events': g[1].tags!['3gpp-monitoring-event'] })), 'T8 API'],
      ['duplicate AS', JSON.stringify([TEST_GRANTS[1], TEST_GRANTS[1]]), 'duplicate'],
      ['bad scsAsId', JSON.stringify([{ uid: { type: 'Aese::Application', id: 'as a/..' }, attrs: {}, parents: [] }]), 'scsAsId'],
      ['action entity', JSON.stringify([{ uid: { type: 'Aese::Action', id: 'create' }, attrs: {}, parents: [] }]), 'Action'],
    ];
    for (const [what, entitiesJson, hint] of bad) {
      const err = await failure(operator.applyPolicies({ policies: basePolicies, entitiesJson, expectedVersion: v }));
      expect(err.code, what).to.equal('INVALID_INPUT');
      expect(err.message, what).to.include(hint);
      for (const value of UE_VALUES) expect(err.message, what).to.not.include(value);
    }
    expect(await version()).to.equal(v);
  });

  it('refuses oversized policy sets and grants by size caps (INVALID_INPUT)', async () => {
    const v = await version();
    const bigPolicies = `${basePolicies}\n${'// padding\n'.repeat(7_000)}`;
    const many = Array.from({ length: 12_000 }, (_, i) => `msisdn:49170${String(i).padStart(8, '0')}`);
    const bigGrants = grantsWith(g => g[1].tags!['3gpp-monitoring-event'].targets.push(...many));
    expect(Buffer.byteLength(bigPolicies)).to.be.above(64 * 1024);
    expect(Buffer.byteLength(bigGrants)).to.be.above(256 * 1024);
    const p = await failure(operator.applyPolicies({ policies: bigPolicies, entitiesJson: JSON.stringify(TEST_GRANTS), expectedVersion: v }));
    expect(p.code).to.equal('INVALID_INPUT');
    expect(p.message).to.include('exceed');
    const e = await failure(operator.applyPolicies({ policies: basePolicies, entitiesJson: bigGrants, expectedVersion: v }));
    expect(e.code).to.equal('INVALID_INPUT');
    expect(e.message).to.include('exceeds');
    expect(await version()).to.equal(v);
  });

  it('refuses a change based on a stale version (FAILED_PRECONDITION)', async () => {
    const v = await version();
    const err = await failure(operator.applyPolicies({ policies: basePolicies, entitiesJson: JSON.stringify(TEST_GRANTS), expectedVersion: v - 1 }));
    expect(err.code).to.equal('FAILED_PRECONDITION');
    expect(await version()).to.equal(v);
    // Positive controls: the current version, and 0 (no check).
    expect((await operator.applyPolicies({ policies: basePolicies, entitiesJson: JSON.stringify(TEST_GRANTS), expectedVersion: v })).version).to.equal(v + 1);
    expect((await operator.applyPolicies({ policies: basePolicies, entitiesJson: JSON.stringify(TEST_GRANTS), expectedVersion: 0 })).version).to.equal(v + 2);
  });

  it('brings a new version into force on a second replica within a bounded time', async () => {
    const logger = createLogger({ service: 'authorization', level: 'warn', destination: { write: (l: string) => void mesh.logs.push(l.trimEnd()) } });
    const replica = await startAuthorizationService({ ...mesh.env, PORT: '0' }, logger);
    await replica.whenReady;
    const second = authorizationClient(mesh, 'capability-exposure', `localhost:${replica.port}`);
    try {
      const v = await version();
      // The replica loaded the stored version, not the shipped defaults.
      expect((await second.decide(request())).policyVersion).to.equal(v);
      expect((await second.decide(request({ targets: [UE.stranger] }))).allowed).to.equal(false);
      // Grant the stranger UE on the first replica; the second must follow.
      const applied = await operator.applyPolicies({
        policies: basePolicies,
        entitiesJson: grantsWith(g => g[1].tags!['3gpp-monitoring-event'].targets.push(UE.stranger)),
        expectedVersion: v,
      });
      const started = Date.now();
      await eventually(
        'the second replica to decide with the new version',
        async () => (await second.decide(request({ targets: [UE.stranger] }))).policyVersion === applied.version,
        3_000,
      );
      const d = await second.decide(request({ targets: [UE.stranger] }));
      expect(d).to.deep.include({ allowed: true, policyVersion: applied.version });
      expect(Date.now() - started).to.be.below(3_000);
      // And back: revoking the grant takes effect too (no stale cached allow).
      const revoked = await operator.applyPolicies({ policies: basePolicies, entitiesJson: JSON.stringify(TEST_GRANTS), expectedVersion: applied.version });
      await eventually('the revocation on the second replica', async () => (await second.decide(request({ targets: [UE.stranger] }))).policyVersion === revoked.version, 3_000);
      expect(await second.decide(request({ targets: [UE.stranger] }))).to.deep.include({ allowed: false, denyCause: 'TARGET_NOT_GRANTED' });
    } finally {
      second.close();
      await replica.stop();
    }
  });

  describe('versions written to the store behind the service (catalogue case 45)', () => {
    let nc: NatsConnection;
    let kv: KV;
    let cryptoAsAuthorization: MeshClient<CryptoServiceClient>;
    before(async () => {
      nc = await mesh.natsConnect('authorization');
      kv = await nc.jetstream().views.kv('aese_policies');
      // Signing through crypto with the authorization identity: the strongest forgery an
      // attacker inside the mesh could make (a genuine signature over chosen content).
      cryptoAsAuthorization = createMeshClient(CryptoServiceClient, { address: mesh.env['CRYPTO_ADDR'], tls: mesh.tls('authorization'), serverId: mesh.id('crypto') });
    });
    after(async () => {
      cryptoAsAuthorization?.close();
      await nc?.drain();
    });

    const nextRevision = async (): Promise<number> => (await kv.status()).streamInfo.state.last_seq + 1;
    const put = async (value: unknown): Promise<void> => {
      await kv.put('current', new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value)));
    };
    const signed = async (version: number, revision: number, content: { policies: string; entities: unknown }, key: 'genuine' | 'attacker' = 'genuine') => {
      const payload = JSON.stringify({ ...content, appliedAtMs: Date.now() });
      const bytes = signedBytes(POLICY_SIGNATURE_SUBJECT, POLICY_BUNDLE_TYPE, version, Buffer.from(`${revision}\n${payload}`));
      const genuine = await cryptoAsAuthorization.sign({ purpose: KeyPurpose.KEY_PURPOSE_EVENT_SIGNING, data: Buffer.from(bytes) });
      const signature =
        key === 'genuine' ? genuine.signature : sign('sha256', bytes, { key: generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey, dsaEncoding: 'ieee-p1363' });
      return { version, revision, payload, kid: genuine.kid, signature: Buffer.from(signature).toString('base64url') };
    };
    const refusedFor = (reason: string, from: number): boolean => mesh.logs.slice(from).some(l => l.includes('ignored a stored policy version') && l.includes(reason));

    it('ignores a forged, a replayed, an invalid and a malformed version; a fresh replica finds the last good one', async () => {
      const current = await operator.getPolicies({});
      const allowed = await pdp.decide(request());
      expect(allowed.allowed).to.equal(true);
      const permissive = { policies: '@id("allow-all") permit (principal, action, resource);', entities: [] };

      // Forged: well-formed, right revision, signed with another key under the genuine kid.
      let mark = mesh.logs.length;
      await put(await signed(current.version + 1, await nextRevision(), permissive, 'attacker'));
      await eventually('the forged version to be refused', () => refusedFor('BAD_SIGNATURE', mark));

      // Genuinely signed but failing schema validation.
      mark = mesh.logs.length;
      await put(await signed(current.version + 2, await nextRevision(), { policies: UNDECLARED_ATTRIBUTE, entities: [] }));
      await eventually('the invalid version to be refused', () => refusedFor('INVALID_POLICY_VERSION', mark));

      // Genuinely signed and valid, but for another revision: a copy replayed into the store.
      mark = mesh.logs.length;
      await put(await signed(current.version + 3, (await nextRevision()) + 5, permissive));
      await eventually('the replayed version to be refused', () => refusedFor('REPLAYED_POLICY_VERSION', mark));

      // An older genuine version written again (rollback), and garbage.
      const history: unknown[] = [];
      for await (const e of await kv.history({ key: 'current' })) history.push(JSON.parse(new TextDecoder().decode(e.value)));
      const older = history.find(v => (v as { version?: number }).version === current.version - 1);
      expect(older, 'an older version is in the history').to.not.equal(undefined);
      mark = mesh.logs.length;
      await put(older);
      await eventually('the rollback to be refused', () => refusedFor('STALE_POLICY_VERSION', mark));
      mark = mesh.logs.length;
      await put('not json at all');
      await eventually('the malformed value to be refused', () => refusedFor('MALFORMED_POLICY_VERSION', mark));

      // The last-known-good set still decides; a stranger UE is still refused.
      expect((await operator.getPolicies({})).version).to.equal(current.version);
      expect(await pdp.decide(request())).to.deep.equal(allowed);
      expect(await pdp.decide(request({ scsAsId: 'as-nobody', pathScsAsId: 'as-nobody' }))).to.deep.include({ allowed: false, denyCause: 'NO_GRANT' });

      // A replica started now skips everything above and takes the newest good version.
      const logger = createLogger({ service: 'authorization', level: 'warn', destination: { write: (l: string) => void mesh.logs.push(l.trimEnd()) } });
      const fresh = await startAuthorizationService({ ...mesh.env, PORT: '0' }, logger);
      await fresh.whenReady;
      const freshClient = authorizationClient(mesh, 'capability-exposure', `localhost:${fresh.port}`);
      try {
        expect(await freshClient.decide(request())).to.deep.equal(allowed);
        expect(await freshClient.decide(request({ scsAsId: 'as-nobody', pathScsAsId: 'as-nobody' }))).to.deep.include({ allowed: false, policyVersion: current.version });
      } finally {
        freshClient.close();
        await fresh.stop();
      }

      // Every refusal is in the audit trail.
      const reader = await mesh.natsConnect('operator');
      const trail = await readAuditTrail(reader).finally(() => reader.close());
      const reasons = trail.filter(e => e.action === 'policy.load').map(e => e.reason);
      expect(reasons).to.include.members(['BAD_SIGNATURE', 'INVALID_POLICY_VERSION', 'REPLAYED_POLICY_VERSION', 'STALE_POLICY_VERSION', 'MALFORMED_POLICY_VERSION']);

      // Positive control: the operator can still apply, building on the version it reads.
      const next = await operator.applyPolicies({ policies: basePolicies, entitiesJson: current.entitiesJson, expectedVersion: current.version });
      expect(next.version).to.be.above(current.version);
      expect((await pdp.decide(request())).policyVersion).to.equal(next.version);
    });
  });

  it('refuses every decision while no stored version passes the checks, until the operator applies one', async () => {
    const nats = await startNatsServer({ secured: { stateDir: mesh.stateDir, trustDomain: mesh.trustDomain } });
    const nc = await connectNatsAs(nats.url, mesh.stateDir, 'authorization');
    const logger = createLogger({ service: 'authorization', level: 'warn', destination: { write: (l: string) => void mesh.logs.push(l.trimEnd()) } });
    let replica: { port: number; stop(): Promise<void> } | undefined;
    let admin: AuthorizationClient | undefined;
    let decider: AuthorizationClient | undefined;
    try {
      // A store that holds only a forged version (no valid signature): nothing may decide.
      const kv = await nc.jetstream().views.kv('aese_policies', { history: 16 });
      const forged = { policies: '@id("allow-all") permit (principal, action, resource);', entities: [], appliedAtMs: 0 };
      await kv.put('current', new TextEncoder().encode(JSON.stringify({ version: 7, revision: 1, payload: JSON.stringify(forged), kid: 'k1', signature: 'AAAA' })));
      const started = await startAuthorizationService({ ...mesh.env, NATS_URL: nats.url, PORT: '0' }, logger);
      replica = started;
      await started.whenReady;
      admin = authorizationClient(mesh, 'operator', `localhost:${replica.port}`);
      decider = authorizationClient(mesh, 'capability-exposure', `localhost:${replica.port}`);
      expect((await failure(decider.decide(request()))).code).to.equal('UNAVAILABLE');
      const empty = await admin.getPolicies({});
      expect(empty).to.deep.include({ version: 0, policies: '' });
      expect(empty.schema).to.include('namespace Aese');

      // The CLI asks for both parts, then applies them.
      const out: string[] = [];
      const deps = { client: admin, stdout: (t: string) => void out.push(t) };
      const grantsFile = join(mesh.stateDir, 'recovery-grants.json');
      const policyFile = join(mesh.stateDir, 'recovery.cedar');
      writeFileSync(grantsFile, JSON.stringify(TEST_GRANTS));
      writeFileSync(policyFile, basePolicies);
      expect((await failure(policyApply([grantsFile], deps))).code).to.equal('FAILED_PRECONDITION');
      await policyShow([], deps);
      expect(out.join('')).to.include('no policy version is in force');
      expect(await policyApply([policyFile, grantsFile], deps)).to.equal(0);
      const d = await decider.decide(request());
      // Numbered above the forged one, so no replica could mistake one for the other.
      expect(d).to.deep.include({ allowed: true, policyVersion: 8 });
    } finally {
      admin?.close();
      decider?.close();
      await replica?.stop();
      await nc.close();
      await nats.dispose();
    }
  });

  it('keeps the stored version across a restart of the service', async () => {
    const v = await version();
    await mesh.restart('authorization');
    const restarted = authorizationClient(mesh, 'operator');
    try {
      expect((await restarted.getPolicies({})).version).to.equal(v);
    } finally {
      restarted.close();
    }
  });

  describe('aese policy show / apply (in process)', () => {
    let out: string[];
    let dir: string;
    let admin: AuthorizationClient;
    const deps = () => ({ client: admin, stdout: (t: string) => void out.push(t) });

    beforeEach(() => {
      out = [];
      dir = mesh.stateDir;
      admin = authorizationClient(mesh, 'operator');
    });
    afterEach(() => admin.close());

    it('shows the grants as a table without UE identifiers, and the parts on request', async () => {
      const v = await version();
      expect(await policyShow([], deps())).to.equal(0);
      const text = out.join('');
      expect(text).to.include(`policy version ${v}`);
      expect(text).to.match(/as-a\s+3gpp-monitoring-event\s+create,read,delete,notify\s+location,reachability\s+3\s+encrypt:location location:cell rate:50\/s/);
      expect(text).to.match(/as-b\s+3gpp-as-session-with-qos\s+.*\bany\b/);
      for (const value of UE_VALUES) expect(text).to.not.include(value);
      out = [];
      await policyShow(['--grants'], deps());
      expect(JSON.parse(out.join(''))).to.deep.equal(TEST_GRANTS);
      out = [];
      await policyShow(['--policies'], deps());
      expect(out.join('')).to.equal(basePolicies);
      out = [];
      await policyShow(['--json'], deps());
      const json = JSON.parse(out.join('')) as { version: number; policies: string; entities: unknown; schema: string };
      expect(json).to.deep.include({ version: v, policies: basePolicies, entities: TEST_GRANTS });
      expect(json.schema).to.include('namespace Aese');
      expect((await failure(policyShow(['--json', '--grants'], deps()))).code).to.equal('INVALID_INPUT');
    });

    it('applies an edited grants file and refuses an invalid policy file', async () => {
      const v = await version();
      // An operator grants a new AS: edit the grants JSON, apply it.
      const grants = grantsWith(g =>
        g.push({
          uid: { type: 'Aese::Application', id: 'as-new' },
          attrs: { rateLimitPerSecond: 5 },
          parents: [],
          tags: {
            '3gpp-monitoring-event': { operations: ['create'], categories: ['reachability'], targets: [UE.b], anyTarget: false },
          },
        }),
      );
      const grantsFile = join(dir, 'grants.json');
      writeFileSync(grantsFile, grants);
      const newAs = request({ scsAsId: 'as-new', pathScsAsId: 'as-new', dataCategories: ['reachability'], targets: [UE.b] });
      expect(await pdp.decide(newAs)).to.deep.include({ allowed: false, denyCause: 'NO_GRANT' });
      expect(await policyApply([grantsFile], deps())).to.equal(0);
      expect(out.join('')).to.include(`applied policy version ${v + 1}`);
      expect(await pdp.decide(newAs)).to.deep.include({ allowed: true, policyVersion: v + 1 });
      // The policy set was kept.
      expect((await admin.getPolicies({})).policies).to.equal(basePolicies);

      // A policy file failing schema validation is refused; nothing changes.
      const badFile = join(dir, 'bad.cedar');
      writeFileSync(badFile, `${basePolicies}\n${UNDECLARED_ATTRIBUTE}`);
      const err = await failure(policyApply([badFile], deps()));
      expect(err.code).to.equal('INVALID_INPUT');
      expect(await version()).to.equal(v + 1);
      expect(await pdp.decide(newAs)).to.deep.include({ allowed: true });

      // A stale --expected-version is refused; a bundle from 'policy show --json' applies both parts.
      expect((await failure(policyApply([grantsFile, '--expected-version', String(v)], deps()))).code).to.equal('FAILED_PRECONDITION');
      out = [];
      await policyShow(['--json'], deps());
      const bundleFile = join(dir, 'bundle.json');
      writeFileSync(bundleFile, out.join(''));
      out = [];
      await policyApply([bundleFile], deps());
      expect(out.join(''))
        .to.include(`applied policy version ${v + 2}`)
        .and.include('policies and grants');
    });

    it('refuses bad command lines', async () => {
      expect((await failure(policyApply([], deps()))).code).to.equal('INVALID_INPUT');
      expect((await failure(policyApply(['a.json', 'b.json', 'c.json'], deps()))).code).to.equal('INVALID_INPUT');
      expect((await failure(policyApply([join(dir, 'missing.json')], deps()))).code).to.equal('NOT_FOUND');
      const grantsFile = join(dir, 'grants-2.json');
      writeFileSync(grantsFile, JSON.stringify(TEST_GRANTS));
      expect((await failure(policyApply([grantsFile, grantsFile], deps()))).code).to.equal('INVALID_INPUT');
      expect((await failure(policyApply([grantsFile, '--expected-version', 'latest'], deps()))).code).to.equal('INVALID_INPUT');
      const notJson = join(dir, 'grants.txt');
      writeFileSync(notJson, 'grant everything');
      expect((await failure(policyApply([notJson], deps()))).message).to.include('neither');
    });
  });
});
