import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { NetworkEvent } from '../src/network/network-adapter.ts';
import { simulatedImsi, simulatedUeIdentifiers, SimulatedCore } from '../src/network/simulated-core.ts';
import { MemoryResourceStore } from '../src/domain/resource-store.ts';
import { applyJsonPatch, applyMergePatch } from '../src/domain/patch.ts';
import { applyOwnObligations } from '../src/domain/obligations.ts';
import { T8Problem } from '../src/domain/problem.ts';
import { BUILTIN_MODULES } from '../src/modules/index.ts';
import { ModuleRegistry } from '../src/modules/registry.ts';
import { builtinModules } from './support.ts';

async function events(seed: number, ticks: number): Promise<string[]> {
  const core = new SimulatedCore({ seed, ueCount: 20, now: () => 1_700_000_000_000 });
  const seen: string[] = [];
  core.subscribe((e: NetworkEvent) => {
    seen.push(JSON.stringify(e));
  });
  await core.advance(ticks);
  await core.stop();
  return seen;
}

describe('capability-exposure module registry', function () {
  this.timeout(60_000);
  it('registers the built-in modules and routes by method and path template', async () => {
    const schemas = await loadT8Schemas();
    const network = new SimulatedCore({ ueCount: 4 });
    const registry = new ModuleRegistry();
    const decide = async () => ({ allowed: false, obligations: [], policyVersion: 0, denyCause: 'X' });
    for (const m of builtinModules({ network, store: new MemoryResourceStore(), schemas, decide })) registry.register(m);
    expect(registry.list().map(m => m.name)).to.deep.equal(BUILTIN_MODULES.map(d => d.name));
    expect(registry.list().map(m => m.name)).to.include.members(['3gpp-monitoring-event', '3gpp-as-session-with-qos', '3gpp-chargeable-party']);
    for (const m of registry.list()) {
      // Every declared schema name exists in the official file.
      for (const s of m.schemas) expect(() => schemas.validator(m.schemaFile, s)).to.not.throw();
    }
    const hit = registry.match('PATCH', '/3gpp-monitoring-event/v1/as.1/subscriptions/abc?x=1');
    expect(hit.kind).to.equal('match');
    if (hit.kind === 'match') {
      expect(hit.match.params).to.deep.equal({ scsAsId: 'as.1', subscriptionId: 'abc' });
      expect(hit.match.route.operation).to.equal('update');
      expect(hit.match.query.get('x')).to.equal('1');
    }
    expect(registry.match('GET', '/3gpp-monitoring-event/v2/as1/subscriptions').kind).to.equal('no-route');
    expect(registry.match('GET', '/3gpp-monitoring-event/v1/as1/subscriptions/a/b').kind).to.equal('no-route');
    expect(registry.match('GET', '/3gpp-monitoring-event/v1/as1/subscriptions/%2e%2e').kind).to.equal('no-route');
    expect(registry.match('GET', '/3gpp-monitoring-event/v1/as1/subscriptions/%E0%A4%A').kind).to.equal('no-route');
    expect(registry.match('POST', '/3gpp-as-session-with-qos/v1/as1/subscriptions/x')).to.deep.equal({ kind: 'method-not-allowed', allowed: ['GET', 'PUT', 'PATCH', 'DELETE'] });
    expect(() => registry.register(registry.list()[0])).to.throw(TypeError, /already registered/);
    await network.stop();
  });
});

describe('capability-exposure simulated core', () => {
  it('is deterministic: same seed, same events; another seed, other events', async () => {
    const a = await events(42, 10);
    expect(a.length).to.be.greaterThan(10);
    expect(await events(42, 10)).to.deep.equal(a);
    expect(await events(43, 10)).to.not.deep.equal(a);
  });

  it('knows UEs by externalId, msisdn and address, groups by externalGroupId, and never shows an IMSI', async () => {
    const core = new SimulatedCore({ ueCount: 8, groupCount: 2 });
    const ids = simulatedUeIdentifiers(3);
    const byExt = await core.findUe({ externalId: ids.externalId });
    expect(byExt).to.include({ externalId: 'ue3@scef.test', msisdn: '33610000003' });
    expect(await core.findUe({ msisdn: ids.msisdn })).to.deep.equal(byExt);
    expect(await core.findUe({ ipv4Addr: ids.ipv4Addr })).to.deep.equal(byExt);
    expect(await core.findUe({ ipv6Addr: ids.ipv6Addr })).to.deep.equal(byExt);
    expect(await core.findUe({ externalId: 'nobody@scef.test' })).to.equal(undefined);
    expect(await core.groupMembers('group1@scef.test')).to.have.length(4);
    expect(await core.groupMembers('group9@scef.test')).to.equal(undefined);
    const loc = await core.locate(byExt!);
    expect(loc.cellId).to.match(loc.rat === 'EUTRA' ? /^[0-9a-f]{7}$/ : /^[0-9a-f]{9}$/);
    const views = JSON.stringify([byExt, loc, await core.reachability(byExt!), await core.roaming(byExt!)]);
    expect(views).to.not.include(simulatedImsi(3));
    await core.stop();
  });

  it('QoS sessions flip between guaranteed and not, and stop after delete', async () => {
    const core = new SimulatedCore({ ueCount: 2 });
    const ue = (await core.findUe({ externalId: 'ue1@scef.test' }))!;
    const s = await core.createQosSession({ ue, qosReference: 'qos-gold', altQosReferences: ['qos-silver'] });
    const qos: NetworkEvent[] = [];
    core.subscribe(e => {
      if (e.kind === 'qos') qos.push(e);
    });
    await core.advance(20);
    expect(qos.length).to.be.greaterThan(0);
    expect(qos.every(e => e.kind === 'qos' && e.sessionId === s.id)).to.equal(true);
    expect(await core.deleteQosSession(s.id)).to.equal(true);
    const n = qos.length;
    await core.advance(20);
    expect(qos.length).to.equal(n);
    await core.stop();
  });

  it('the automatic tick runs on its interval and stops with stop()', async () => {
    const core = new SimulatedCore({ ueCount: 2, tickMs: 10 });
    await new Promise(r => setTimeout(r, 80));
    await core.stop();
    const n = core.tickCount;
    expect(n).to.be.greaterThan(0);
    await new Promise(r => setTimeout(r, 40));
    expect(core.tickCount).to.equal(n);
  });

  it('a listener slower than the tick makes the timer skip ticks, not queue them: stop() waits only for the one running', async () => {
    const core = new SimulatedCore({ seed: 1, ueCount: 200, tickMs: 10 });
    let release!: () => void;
    const gate = new Promise<void>(r => (release = r));
    let calls = 0;
    core.subscribe(async () => {
      if (calls++ === 0) await gate;
    });
    // Ten periods with the first tick's listener held up.
    await new Promise(r => setTimeout(r, 100));
    expect(calls, 'the first tick reached the listener').to.equal(1);
    expect(core.tickCount, 'no tick ran while the first was held').to.equal(1);
    release();
    await core.stop();
    // Queued ticks would all run before stop() resolved.
    expect(core.tickCount).to.be.at.most(2);
  });
});

describe('capability-exposure patches and obligations', () => {
  it('JSON Patch applies atomically and refuses prototype paths', () => {
    const doc = { a: 1, b: [1, 2], c: { d: 'x' } };
    expect(
      applyJsonPatch(doc, [
        { op: 'add', path: '/b/-', value: 3 },
        { op: 'remove', path: '/a' },
        { op: 'replace', path: '/c/d', value: 'y' },
        { op: 'copy', from: '/c', path: '/e' },
        { op: 'test', path: '/e/d', value: 'y' },
      ]),
    ).to.deep.equal({ b: [1, 2, 3], c: { d: 'y' }, e: { d: 'y' } });
    expect(doc).to.deep.equal({ a: 1, b: [1, 2], c: { d: 'x' } });
    for (const bad of [
      [{ op: 'add', path: '/__proto__/polluted', value: 1 }],
      [{ op: 'remove', path: '/zz' }],
      [{ op: 'test', path: '/a', value: 2 }],
      [{ op: 'bogus', path: '/a' }],
      [{ op: 'move', from: '/c', path: '/c/x' }],
    ]) {
      expect(() => applyJsonPatch(doc, bad)).to.throw(T8Problem);
    }
    expect(({} as Record<string, unknown>)['polluted']).to.equal(undefined);
  });

  it('JSON Merge Patch removes nulls and merges objects', () => {
    expect(applyMergePatch({ a: 1, b: { c: 2, d: 3 } }, { a: null, b: { c: null, e: 4 } })).to.deep.equal({ b: { d: 3, e: 4 } });
    expect(() => applyMergePatch({}, JSON.parse('{"__proto__":{"x":1}}'))).to.throw(T8Problem);
  });

  it('coarsen-location keeps only the allowed members at each level; unknown levels mean the coarsest', () => {
    const body = {
      monitoringEventReports: [
        {
          monitoringType: 'LOCATION_REPORTING',
          locationInfo: { cellId: 'c', trackingAreaId: 't', plmnId: 'p', geographicArea: {}, userLocation: {}, civicAddress: {}, ageOfLocationInfo: 0 },
        },
      ],
    };
    const cell = applyOwnObligations(body, [
      { type: 'coarsen-location', parameters: { level: 'cell' } },
      { type: 'encrypt-response', parameters: {} },
    ]);
    expect((cell.body as typeof body).monitoringEventReports[0].locationInfo).to.have.keys('cellId', 'trackingAreaId', 'plmnId', 'userLocation', 'ageOfLocationInfo');
    expect(cell.remaining).to.deep.equal([{ type: 'encrypt-response', parameters: {} }]);
    const unknown = applyOwnObligations(body, [{ type: 'coarsen-location', parameters: { level: 'street' } }]);
    expect((unknown.body as typeof body).monitoringEventReports[0].locationInfo).to.have.keys('trackingAreaId', 'plmnId', 'ageOfLocationInfo');
    expect(applyOwnObligations(body, []).body).to.equal(body);
  });
});
