import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import type { Decide } from '../src/domain/decision.ts';
import { Invoker } from '../src/domain/invoke.ts';
import { MemoryResourceStore } from '../src/domain/resource-store.ts';
import { ModuleRegistry } from '../src/modules/registry.ts';
import { simulatedUeIdentifiers, SimulatedCore } from '../src/network/simulated-core.ts';
import { API_ROOT, AS_DESTINATION, builtinModules } from './support.ts';

const UE1 = simulatedUeIdentifiers(1);

/** How a failed decision is answered: an outage is 503, a request authorization calls malformed is this service's 500. */
describe('capability-exposure Invoke when no decision can be had', () => {
  let schemas: T8Schemas;
  before(async () => {
    schemas = await loadT8Schemas();
  });

  async function invokeWith(decide: Decide): Promise<{ status: number; body: Record<string, unknown>; errors: string[]; stored: number }> {
    const network = new SimulatedCore({ seed: 1, ueCount: 10, groupCount: 1, tickMs: 0 });
    const store = new MemoryResourceStore();
    const registry = new ModuleRegistry();
    for (const m of builtinModules({ network, store, schemas, decide })) registry.register(m);
    const errors: string[] = [];
    const invoker = new Invoker({ registry, schemas, store, decide, onError: (_err, where) => errors.push(where) });
    try {
      const out = await invoker.invoke({
        scsAsId: 'as1',
        method: 'POST',
        path: '/3gpp-monitoring-event/v1/as1/subscriptions',
        contentType: 'application/json',
        body: Buffer.from(JSON.stringify({ externalId: UE1.externalId, notificationDestination: AS_DESTINATION, monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 5 })),
        scopes: ['3gpp-monitoring-event'],
        apiRoot: API_ROOT,
      });
      return { status: out.status, body: JSON.parse(Buffer.from(out.body).toString('utf8')) as Record<string, unknown>, errors, stored: store.all('3gpp-monitoring-event').length };
    } finally {
      await network.stop();
    }
  }

  it('INVALID_INPUT from authorization is a logged 500, not an outage; nothing is stored', async () => {
    const out = await invokeWith(async () => {
      throw new AeseError('INVALID_INPUT', 'targets[0]: an externalId is <local>@<domain> in printable ASCII');
    });
    expect(out.status).to.equal(500);
    expect(out.body).to.deep.equal({ status: 500, title: 'Internal Server Error', detail: 'the request could not be completed', cause: 'INTERNAL_ERROR' });
    expect(out.errors).to.deep.equal(['decide']);
    expect(out.stored).to.equal(0);
  });

  it('an unreachable authorization is a 503 (fail closed); an allow decision creates the subscription (positive control)', async () => {
    const down = await invokeWith(async () => {
      throw new AeseError('UNAVAILABLE', 'connection refused');
    });
    expect(down.status).to.equal(503);
    expect(down.body['cause']).to.equal('AUTHORIZATION_UNAVAILABLE');
    expect(down.stored).to.equal(0);
    const allowed = await invokeWith(async () => ({ allowed: true, obligations: [], policyVersion: 1, denyCause: '' }));
    expect(allowed.status, JSON.stringify(allowed.body)).to.equal(201);
    expect(allowed.stored).to.equal(1);
  });
});
