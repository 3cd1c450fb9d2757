import { expect } from 'chai';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { CHARGEABLE_PARTY_API, CHARGEABLE_PARTY_CATEGORY } from '../src/modules/chargeable-party/index.ts';
import { SPONSORED_BYTES_PER_MOVE } from '../src/modules/chargeable-party/network.ts';
import { simulatedUeIdentifiers } from '../src/network/simulated-core.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { AS_DESTINATION, edgeClient, NotificationWatcher, startInstance, t8, TestPolicy } from './support.ts';
import type { T8Answer } from './support.ts';

const BASE = `/${CHARGEABLE_PARTY_API}/v1/as1/transactions`;
const UE1 = simulatedUeIdentifiers(1);
const EVENTS = ['SUCCESSFUL_RESOURCES_ALLOCATION', 'LOSS_OF_BEARER', 'RECOVERY_OF_BEARER', 'USAGE_REPORT'];

interface Report {
  readonly event: string;
  readonly accumulatedUsage?: { readonly totalVolume?: number };
}

describe(`${CHARGEABLE_PARTY_API}: sponsoring in the simulated network`, function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let client: ReturnType<typeof edgeClient>;
  let watcher: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];
  const advance = () => svc.simulator!.advance();
  const reportsOf = (id: string): Report[] =>
    watcher.for(id).flatMap(n => {
      const body = JSON.parse(Buffer.from(n.body).toString('utf8')) as { transaction: string; eventReports: Report[] };
      const valid = schemas.validator('common-data', 'NotificationData', 'response');
      expect(valid(body), JSON.stringify(valid.violations())).to.equal(true);
      expect(n.api).to.equal(CHARGEABLE_PARTY_API);
      return body.eventReports;
    });
  const create = (extra: Record<string, unknown> = {}): Promise<T8Answer> =>
    t8(client, {
      method: 'POST',
      path: BASE,
      body: {
        notificationDestination: AS_DESTINATION,
        ipv4Addr: UE1.ipv4Addr,
        sponsorInformation: { sponsorId: 's1', aspId: 'a1' },
        sponsoringEnabled: true,
        events: EVENTS,
        ...extra,
      },
    });

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    policy.grants.set('as1', { targets: [`externalId:${UE1.externalId}`], categories: [CHARGEABLE_PARTY_CATEGORY] });
    svc = await startInstance(mesh, logs, policy.decide);
    client = edgeClient(mesh, svc.port);
    watcher = await NotificationWatcher.open(mesh.nats.url, mesh.stateDir, 'as1');
  });

  after(async () => {
    client?.close();
    await watcher?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it('reports the allocation at once, bearer loss and recovery as the UE comes and goes, and one usage report at the threshold', async () => {
    const created = await create({ usageThreshold: { totalVolume: 3 * SPONSORED_BYTES_PER_MOVE } });
    expect(created.status, created.text).to.equal(201);
    const id = created.headers['location'].split('/').pop()!;
    await watcher.waitFor(
      n => n.subscriptionId === id,
      async () => watcher.settle(),
    );
    expect(reportsOf(id).map(r => r.event)).to.deep.equal(['SUCCESSFUL_RESOURCES_ALLOCATION']);

    await watcher.waitFor(() => reportsOf(id).some(r => r.event === 'USAGE_REPORT'), advance, 200);
    const usage = reportsOf(id).filter(r => r.event === 'USAGE_REPORT');
    expect(usage).to.have.length(1);
    expect(usage[0].accumulatedUsage?.totalVolume).to.equal(3 * SPONSORED_BYTES_PER_MOVE);
    await watcher.waitFor(() => reportsOf(id).some(r => r.event === 'LOSS_OF_BEARER'), advance, 200);
    await watcher.waitFor(() => reportsOf(id).some(r => r.event === 'RECOVERY_OF_BEARER'), advance, 200);
    for (let i = 0; i < 20; i++) await advance();
    await watcher.settle();
    expect(
      reportsOf(id).filter(r => r.event === 'USAGE_REPORT'),
      'the threshold is reported once',
    ).to.have.length(1);
    // Bearer events alternate: the UE cannot lose a bearer it has already lost.
    const bearer = reportsOf(id)
      .filter(r => r.event.endsWith('_OF_BEARER'))
      .map(r => r.event);
    bearer.forEach((e, i) => i > 0 && expect(e).to.not.equal(bearer[i - 1]));
  });

  it('reports nothing while sponsoring is off, and allocates again when it is switched back on', async () => {
    const created = await create();
    const id = created.headers['location'].split('/').pop()!;
    const item = `${BASE}/${id}`;
    await watcher.waitFor(
      n => n.subscriptionId === id,
      async () => watcher.settle(),
    );
    const off = await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { sponsoringEnabled: false } });
    expect(off.status, off.text).to.equal(200);
    const before = watcher.for(id).length;
    for (let i = 0; i < 20; i++) await advance();
    await watcher.settle();
    expect(watcher.for(id), 'no event while sponsoring is off').to.have.length(before);
    const on = await t8(client, { method: 'PATCH', path: item, contentType: 'application/merge-patch+json', body: { sponsoringEnabled: true } });
    expect(on.status, on.text).to.equal(200);
    await watcher.waitFor(
      n => n.subscriptionId === id && watcher.for(id).length > before,
      async () => watcher.settle(),
    );
    expect(
      reportsOf(id)
        .slice(before)
        .map(r => r.event),
    ).to.deep.equal(['SUCCESSFUL_RESOURCES_ALLOCATION']);
  });

  it('refuses an address no UE holds once authorized (UNKNOWN_UE for a granted AS), and stores nothing', async () => {
    const list = async () => (await t8(client, { method: 'GET', path: BASE })).json as unknown[];
    const before = await list();
    const refused = await create({ ipv4Addr: '10.45.250.250' });
    // A free address is authorized as no UE at all (ue-targets.ts), so an AS granted only UE 1 is refused first.
    expect(refused.status, refused.text).to.equal(403);
    policy.grants.set('as1', { targets: [`externalId:${UE1.externalId}`, 'externalId:free-address@ue.invalid'], categories: [CHARGEABLE_PARTY_CATEGORY] });
    const unknown = await create({ ipv4Addr: '10.45.250.250' });
    expect(unknown.status, unknown.text).to.equal(400);
    expect((unknown.json as { cause: string }).cause).to.equal('UNKNOWN_UE');
    expect(unknown.text).to.not.include('10.45.250.250');
    expect(await list()).to.deep.equal(before);
  });
});
