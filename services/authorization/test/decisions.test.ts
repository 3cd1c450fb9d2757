import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { status } from '@grpc/grpc-js';
import { readAuditTrail, verifyAuditTrail } from '@aese/events';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { authorizationClient, failure, request, TEST_GRANTS, UE, UE_VALUES } from './support.ts';
import type { AuthorizationClient } from './support.ts';
import { eventually } from '@aese/testing';

const SHIPPED_POLICIES = readFileSync(new URL('../policies/base.cedar', import.meta.url), 'utf8');

describe('authorization decisions (Cedar, deny by default, grants as entity data)', function () {
  // Starting a whole mesh on a shared two-core machine can take longer than one test.
  this.timeout(60_000);
  let mesh: TestMesh;
  let pdp: AuthorizationClient;
  let operator: AuthorizationClient;
  let version: number;

  before(async () => {
    mesh = await startTestMesh();
    pdp = authorizationClient(mesh, 'capability-exposure');
    operator = authorizationClient(mesh, 'operator');
    const current = await operator.getPolicies({});
    version = (await operator.applyPolicies({ policies: current.policies, entitiesJson: JSON.stringify(TEST_GRANTS), expectedVersion: current.version })).version;
  });
  after(async () => {
    pdp?.close();
    operator?.close();
    await mesh?.stop();
  });

  const denials = (): number => mesh.logs.filter(l => l.includes('authorization denied')).length;

  it('starts from the shipped policy set and example grants as version 1', async () => {
    // A fresh store got the defaults at first start; the test grants made version 2.
    expect(version).to.equal(2);
    const current = await operator.getPolicies({});
    expect(current.version).to.equal(2);
    expect(current.policies).to.equal(SHIPPED_POLICIES);
    expect(current.schema).to.include('namespace Aese');
    expect(JSON.parse(current.entitiesJson)).to.deep.equal(TEST_GRANTS);
  });

  it('allows exactly what a grant covers, with the determining policy and the obligations', async () => {
    const d = await pdp.decide(request());
    expect(d).to.deep.include({ allowed: true, denyCause: '', policyVersion: version });
    expect(d.determiningPolicies).to.deep.equal(['permit-granted-request']);
    expect(d.obligations).to.deep.equal([
      { type: 'encrypt-response', parameters: {} },
      { type: 'coarsen-location', parameters: { level: 'cell' } },
      { type: 'rate-limit', parameters: { perSecond: '50' } },
    ]);
    // Every granted kind of target, all at once, and several granted categories.
    const all = await pdp.decide(request({ targets: [UE.a, UE.aMsisdn, UE.aGroup], dataCategories: ['location', 'reachability'] }));
    expect(all.allowed).to.equal(true);
    // Reachability alone is neither encrypted nor coarsened; the rate limit stays.
    const reach = await pdp.decide(request({ dataCategories: ['reachability'], operation: 'read' }));
    expect(reach.allowed).to.equal(true);
    expect(reach.obligations).to.deep.equal([{ type: 'rate-limit', parameters: { perSecond: '50' } }]);
  });

  it('denies a UE or an external group outside the grant (TARGET_NOT_GRANTED)', async () => {
    for (const target of [UE.stranger, UE.strangerMsisdn, UE.strangerGroup, UE.b]) {
      const d = await pdp.decide(request({ targets: [target] }));
      expect(d, target).to.deep.include({ allowed: false, denyCause: 'TARGET_NOT_GRANTED' });
      expect(d.determiningPolicies).to.deep.equal(['forbid-target-not-granted']);
      expect(d.obligations).to.deep.equal([]);
    }
    // One ungranted target among granted ones denies the whole request.
    const mixed = await pdp.decide(request({ targets: [UE.a, UE.aGroup, UE.stranger] }));
    expect(mixed).to.deep.include({ allowed: false, denyCause: 'TARGET_NOT_GRANTED' });
    // Positive control: the same request with only granted targets.
    expect((await pdp.decide(request({ targets: [UE.a, UE.aGroup] }))).allowed).to.equal(true);
  });

  it('denies a data category that is not granted (CATEGORY_NOT_GRANTED)', async () => {
    const d = await pdp.decide(request({ dataCategories: ['roaming'] }));
    expect(d).to.deep.include({ allowed: false, denyCause: 'CATEGORY_NOT_GRANTED' });
    expect(d.determiningPolicies).to.deep.equal(['forbid-category-not-granted']);
    // as-b has location only: reachability is refused, location allowed (catalogue case 3 in reverse).
    const b = await pdp.decide(request({ scsAsId: 'as-b', pathScsAsId: 'as-b', targets: [UE.b], dataCategories: ['location', 'reachability'] }));
    expect(b).to.deep.include({ allowed: false, denyCause: 'CATEGORY_NOT_GRANTED' });
    const bOk = await pdp.decide(request({ scsAsId: 'as-b', pathScsAsId: 'as-b', targets: [UE.b], dataCategories: ['location'] }));
    expect(bOk.allowed).to.equal(true);
    expect(bOk.obligations).to.deep.equal([{ type: 'coarsen-location', parameters: { level: 'ta' } }]);
  });

  it('denies an API or an operation that is not granted', async () => {
    const api = await pdp.decide(request({ api: '3gpp-device-triggering', dataCategories: ['device-triggering'] }));
    expect(api).to.deep.include({ allowed: false, denyCause: 'API_NOT_GRANTED' });
    expect(api.determiningPolicies).to.deep.equal(['forbid-api-not-granted']);
    const op = await pdp.decide(request({ operation: 'update' }));
    expect(op).to.deep.include({ allowed: false, denyCause: 'OPERATION_NOT_GRANTED' });
    expect(op.determiningPolicies).to.deep.equal(['forbid-operation-not-granted']);
    // Positive controls: a granted operation, and as-b's API with any target.
    expect((await pdp.decide(request({ operation: 'delete' }))).allowed).to.equal(true);
    const qos = await pdp.decide(
      request({ scsAsId: 'as-b', pathScsAsId: 'as-b', api: '3gpp-as-session-with-qos', operation: 'update', dataCategories: ['qos'], targets: [UE.stranger] }),
    );
    expect(qos).to.deep.include({ allowed: true, denyCause: '' });
    expect(qos.obligations).to.deep.equal([]);
  });

  it('denies a path {scsAsId} that is not the authenticated AS, even one the caller could otherwise use', async () => {
    const d = await pdp.decide(request({ pathScsAsId: 'as-b' }));
    expect(d).to.deep.include({ allowed: false, denyCause: 'SCS_AS_ID_MISMATCH' });
    expect(d.determiningPolicies).to.include('forbid-path-scs-as-id-mismatch');
    // as-b asking about as-a's path with as-a's granted UE: still a mismatch.
    const b = await pdp.decide(request({ scsAsId: 'as-b', pathScsAsId: 'as-a' }));
    expect(b).to.deep.include({ allowed: false, denyCause: 'SCS_AS_ID_MISMATCH' });
    // An unknown AS naming another path is a mismatch too (that check needs no grant).
    const unknown = await pdp.decide(request({ scsAsId: 'as-nobody', pathScsAsId: 'as-a' }));
    expect(unknown.denyCause).to.equal('SCS_AS_ID_MISMATCH');
  });

  it('denies an AS without grants by default (NO_GRANT)', async () => {
    const d = await pdp.decide(request({ scsAsId: 'as-nobody', pathScsAsId: 'as-nobody' }));
    expect(d).to.deep.include({ allowed: false, denyCause: 'NO_GRANT', policyVersion: version });
    expect(d.obligations).to.deep.equal([]);
    // A request that touches no category and no target is still denied.
    const bare = await pdp.decide(request({ scsAsId: 'as-nobody', pathScsAsId: 'as-nobody', dataCategories: [], targets: [] }));
    expect(bare).to.deep.include({ allowed: false, denyCause: 'NO_GRANT' });
  });

  it('coarsens location to the granted level and leaves exact location alone only when granted', async () => {
    const exact = await pdp.decide(request({ scsAsId: 'as-exact', pathScsAsId: 'as-exact', operation: 'read' }));
    expect(exact.allowed).to.equal(true);
    expect(exact.obligations).to.deep.equal([]);
    const ta = await pdp.decide(request({ scsAsId: 'as-b', pathScsAsId: 'as-b', targets: [UE.b] }));
    expect(ta.obligations).to.deep.equal([{ type: 'coarsen-location', parameters: { level: 'ta' } }]);
  });

  it('answers a repeated request the same way (cached per version)', async () => {
    const first = await pdp.decide(request({ targets: [UE.stranger] }));
    const again = await pdp.decide(request({ targets: [UE.stranger] }));
    expect(again).to.deep.equal(first);
    // Order and duplicates of categories and targets do not change the decision.
    const reordered = await pdp.decide(request({ targets: [UE.aGroup, UE.a, UE.a], dataCategories: ['reachability', 'location'] }));
    const canonical = await pdp.decide(request({ targets: [UE.a, UE.aGroup], dataCategories: ['location', 'reachability'] }));
    expect(reordered).to.deep.equal(canonical);
    expect(canonical.allowed).to.equal(true);
  });

  it('refuses oversized or malformed requests before any evaluation (INVALID_INPUT)', async () => {
    const before = denials();
    const cases: [string, Parameters<typeof request>[0]][] = [
      ['10,000 targets', { targets: Array.from({ length: 10_000 }, (_, i) => `msisdn:4917${String(i).padStart(8, '0')}`) }],
      ['a 1 MB target', { targets: [`externalId:${'a'.repeat(1_000_000)}@a.example`] }],
      ['a 1 MB api', { api: 'a'.repeat(1_000_000) }],
      ['a 1 MB path scsAsId', { pathScsAsId: 'a'.repeat(1_000_000) }],
      ['a 1 MB category', { dataCategories: ['l'.repeat(1_000_000)] }],
      ['17 categories', { dataCategories: Array.from({ length: 17 }, (_, i) => `c${i}`) }],
      ['an unknown target kind', { targets: ['imsi:262011234567890'] }],
      ['an msisdn with a plus', { targets: ['msisdn:+491710000123'] }],
      ['an unknown operation', { operation: 'execute' }],
      ['an empty scsAsId', { scsAsId: '' }],
      ['an empty path scsAsId', { pathScsAsId: '' }],
    ];
    for (const [what, overrides] of cases) {
      const started = Date.now();
      const err = await failure(pdp.decide(request(overrides)));
      expect(err.code, what).to.equal('INVALID_INPUT');
      expect((err.cause as { code: number }).code, what).to.equal(status.INVALID_ARGUMENT);
      expect(Date.now() - started, what).to.be.below(2_000);
      // The message names the field, never the identifier.
      expect(err.message, what).to.not.include('262011234567890');
      expect(err.message, what).to.not.include('aaaaaaaaaa');
    }
    // Nothing was evaluated: no decision was logged.
    expect(denials()).to.equal(before);
    // Positive control: the largest allowed request is decided.
    const maxTargets = Array.from({ length: 100 }, (_, i) => `msisdn:4917${String(i).padStart(8, '0')}`);
    const d = await pdp.decide(request({ targets: maxTargets }));
    expect(d).to.deep.include({ allowed: false, denyCause: 'TARGET_NOT_GRANTED' });
  });

  it('lets only the edge and capability-exposure decide, and only the operator administer', async () => {
    for (const who of ['operator', 'authentication', 'crypto', 'replay-guard'] as const) {
      const c = authorizationClient(mesh, who);
      try {
        expect((await failure(c.decide(request()))).code, who).to.equal('CALLER_NOT_ALLOWED');
      } finally {
        c.close();
      }
    }
    for (const who of ['edge', 'capability-exposure'] as const) {
      const c = authorizationClient(mesh, who);
      try {
        expect((await failure(c.getPolicies({}))).code, who).to.equal('CALLER_NOT_ALLOWED');
        expect((await failure(c.applyPolicies({ policies: SHIPPED_POLICIES, entitiesJson: '[]', expectedVersion: 0 }))).code, who).to.equal('CALLER_NOT_ALLOWED');
        // Positive control: the same identity may decide.
        expect((await c.decide(request())).allowed, who).to.equal(true);
      } finally {
        c.close();
      }
    }
    // The refused apply changed nothing.
    expect((await operator.getPolicies({})).version).to.equal(version);
  });

  it('audits every denial and the policy change, without UE identifiers', async () => {
    const nc = await mesh.natsConnect('operator');
    try {
      const denied = await pdp.decide(request({ targets: [UE.strangerGroup] }));
      expect(denied.allowed).to.equal(false);
      let trail = await readAuditTrail(nc);
      const mine = () => trail.filter(e => e.service === 'authorization');
      await eventually(
        async () => (trail = await readAuditTrail(nc)).some(e => e.service === 'authorization' && e.reason === 'TARGET_NOT_GRANTED' && e.detail?.['categories'] === 'location'),
        2_000,
        'the denial in the audit trail',
      );
      const denial = mine().find(e => e.action === 'authorization.decide' && e.reason === 'TARGET_NOT_GRANTED');
      expect(denial).to.deep.include({ actor: 'as-a', decision: 'deny' });
      expect(denial?.detail).to.deep.include({ api: '3gpp-monitoring-event', operation: 'create', policyVersion: version });
      for (const cause of ['CATEGORY_NOT_GRANTED', 'API_NOT_GRANTED', 'OPERATION_NOT_GRANTED', 'SCS_AS_ID_MISMATCH', 'NO_GRANT']) {
        expect(
          mine().some(e => e.reason === cause),
          cause,
        ).to.equal(true);
      }
      // Allowed requests and refused (malformed) ones are not decisions that deny.
      expect(
        mine()
          .filter(e => e.action === 'authorization.decide')
          .every(e => e.decision === 'deny'),
      ).to.equal(true);
      const change = mine().find(e => e.action === 'policy.apply');
      expect(change).to.deep.include({ actor: mesh.id('operator'), decision: 'change', reason: 'APPLIED' });
      expect(change?.detail).to.deep.include({ policyVersion: version });
      expect(verifyAuditTrail(trail).breaks).to.deep.equal([]);
      const text = JSON.stringify(trail);
      for (const value of UE_VALUES) expect(text).to.not.include(value);
    } finally {
      await nc.close();
    }
  });

  it('never logs a UE or group identifier', () => {
    expect(
      mesh.logs.some(l => l.includes('authorization denied')),
      'denials are logged',
    ).to.equal(true);
    for (const line of mesh.logs) {
      for (const value of UE_VALUES) expect(line).to.not.include(value);
    }
  });

  it('applies a generic operator policy through group membership (the README example)', async () => {
    const forbidPartnerRoaming = `
@id("forbid-partner-roaming")
@denyCause("CATEGORY_NOT_GRANTED")
forbid (principal in Aese::ApplicationGroup::"partners", action, resource)
when { context.categories.contains("roaming") };
`;
    const grants = structuredClone(TEST_GRANTS);
    grants[1].tags!['3gpp-monitoring-event'].categories.push('roaming');
    grants[2].tags!['3gpp-monitoring-event'].categories.push('roaming');
    const current = await operator.getPolicies({});
    const applied = await operator.applyPolicies({
      policies: `${SHIPPED_POLICIES}${forbidPartnerRoaming}`,
      entitiesJson: JSON.stringify(grants),
      expectedVersion: current.version,
    });
    // as-a is a partner: roaming is refused although its grant lists it.
    const partner = await pdp.decide(request({ dataCategories: ['roaming'] }));
    expect(partner).to.deep.include({ allowed: false, denyCause: 'CATEGORY_NOT_GRANTED', policyVersion: applied.version });
    expect(partner.determiningPolicies).to.deep.equal(['forbid-partner-roaming']);
    // Positive control: as-b is no partner and has roaming granted.
    const other = await pdp.decide(request({ scsAsId: 'as-b', pathScsAsId: 'as-b', targets: [UE.b], dataCategories: ['roaming'] }));
    expect(other).to.deep.include({ allowed: true, policyVersion: applied.version });
  });
});
