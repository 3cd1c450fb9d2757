/**
 * `npm run new-api` is how a T8 API starts: ChargeableParty's module and test are exactly what it
 * writes (after Prettier), so the toolkit alone makes a working API; and it reads every T8 file
 * with a resource collection.
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import SwaggerParser from '@apidevtools/swagger-parser';
import { format, resolveConfig } from 'prettier';
import { REPO_ROOT } from '@aese/runtime';
import { loadT8Schemas, OPENAPI_DIR, T8_API_FILES } from '@aese/t8-openapi';
import type { T8ApiFile } from '@aese/t8-openapi';
import { shapeOf } from '../scripts/new-api/index.ts';
import { sample } from '../scripts/new-api/sample.ts';
import { moduleSource, testSource } from '../scripts/new-api/templates.ts';

const docOf = (key: T8ApiFile): Record<string, unknown> => parse(readFileSync(join(OPENAPI_DIR, T8_API_FILES[key]), 'utf8')) as Record<string, unknown>;

async function pretty(source: string, path: string): Promise<string> {
  const options = (await resolveConfig(join(REPO_ROOT, path))) ?? {};
  return format(source, { ...options, filepath: join(REPO_ROOT, path) });
}

describe('npm run new-api: the T8 API scaffold', function () {
  this.timeout(60_000);

  it('wrote ChargeableParty: its module and its test are the scaffold, unedited', async () => {
    const shape = shapeOf('chargeable-party', docOf('chargeable-party'), 'sponsoring');
    const deref = (await SwaggerParser.dereference(join(OPENAPI_DIR, T8_API_FILES['chargeable-party']))) as { components: { schemas: Record<string, unknown> } };
    const body = sample(deref.components.schemas['ChargeableParty']) as Record<string, unknown>;
    const schemas = await loadT8Schemas();
    expect(schemas.validator('chargeable-party', 'ChargeableParty', 'request')(body), 'the scaffolded body fits the official schema').to.equal(true);
    const modulePath = 'services/capability-exposure/src/modules/chargeable-party/index.ts';
    const testPath = 'services/capability-exposure/test/api-chargeable-party.test.ts';
    expect(await pretty(moduleSource(shape, true), modulePath)).to.equal(readFileSync(join(REPO_ROOT, modulePath), 'utf8'));
    expect(await pretty(testSource(shape, body), testPath)).to.equal(readFileSync(join(REPO_ROOT, testPath), 'utf8'));
  });

  it('reads the resource collection, operations and notification of the T8 files that have one', () => {
    const shapes = (['chargeable-party', 'as-session-with-qos', 'monitoring-event', 'device-triggering', 'resource-management-of-bdt'] as const).map(k =>
      shapeOf(k, docOf(k), 'x'),
    );
    expect(shapes.map(s => `${s.name} ${s.collection}/{${s.idParam}} ${s.resource}`)).to.deep.equal([
      '3gpp-chargeable-party /{scsAsId}/transactions/{transactionId} ChargeableParty',
      '3gpp-as-session-with-qos /{scsAsId}/subscriptions/{subscriptionId} AsSessionWithQoSSubscription',
      '3gpp-monitoring-event /{scsAsId}/subscriptions/{subscriptionId} MonitoringEventSubscription',
      '3gpp-device-triggering /{scsAsId}/transactions/{transactionId} DeviceTriggering',
      '3gpp-bdt /{scsAsId}/subscriptions/{subscriptionId} Bdt',
    ]);
    expect(shapes[0]).to.deep.include({ replace: false, remove: true, patch: { kind: 'merge-patch', schema: 'ChargeablePartyPatch', answer: 200 } });
    expect(shapes[2].patch).to.deep.equal({
      kind: 'json-patch',
      schema: '#/paths/~1{scsAsId}~1subscriptions~1{subscriptionId}/patch/requestBody/content/application~1json-patch+json/schema',
      answer: 204,
    });
    expect(shapes[1].notification).to.equal('UserPlaneNotificationData');
  });

  it('refuses a file without a {scsAsId} collection, saying to write that module by hand', () => {
    expect(() => shapeOf('ecr-control', docOf('ecr-control'), 'x')).to.throw(/write this module by hand/);
  });
});
