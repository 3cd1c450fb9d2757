import { expect } from 'chai';
import { ConfigError, loadConfig } from '@aese/config';
import { loadT8Schemas } from '@aese/t8-openapi';
import type { T8Schemas } from '@aese/t8-openapi';
import type { NotificationRequested } from '@aese/protos/events/v1';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { MO_SMS_CATEGORY, MSISDN_LESS_MO_SMS_API } from '../src/modules/msisdn-less-mo-sms/index.ts';
import { MAX_SMS_BYTES, moSmsEvent } from '../src/modules/msisdn-less-mo-sms/network.ts';
import type { MoSms } from '../src/modules/msisdn-less-mo-sms/network.ts';
import { parseMoSmsRoutes } from '../src/modules/msisdn-less-mo-sms/settings.ts';
import { simulatedUeIdentifiers } from '../src/network/simulated-core.ts';
import { CAPABILITY_EXPOSURE_SETTINGS } from '../src/server.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';
import { edgeClient, NotificationWatcher, startInstance, t8, TestPolicy } from './support.ts';

const AS1_SMS = 'https://as1.example.com/mo-sms';
const AS2_SMS = 'https://as2.example.com/mo-sms';
/** Port 16000 goes to as1, 16001 to as2, 16002 to as1 at an address no notification may go to. */
const PORTS = `16000:as1:${AS1_SMS}, 16001:as2:${AS2_SMS}, 16002:as1:https://10.0.0.7/mo-sms`;
const UE1 = simulatedUeIdentifiers(1);
const UE2 = simulatedUeIdentifiers(2);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
type Json = Record<string, unknown>;

const sms = (text: string): string => Buffer.from(text).toString('base64');
const bodyOf = (n: NotificationRequested): Json => JSON.parse(Buffer.from(n.body).toString('utf8')) as Json;

describe(`${MSISDN_LESS_MO_SMS_API}: the SCEF delivers MO SMS to the SCS/AS of the application port`, function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let schemas: T8Schemas;
  let svc: RunningCapabilityExposure;
  let as1: NotificationWatcher;
  let as2: NotificationWatcher;
  const policy = new TestPolicy();
  const logs: string[] = [];

  const send = async (mo: MoSms): Promise<void> => {
    await svc.network.emit(moSmsEvent(mo));
    await as1.settle();
    await as2.settle();
  };
  const valid = (body: unknown): void => {
    const v = schemas.validator('msisdn-less-mo-sms', 'MsisdnLessMoSmsNotification', 'response');
    expect(v(body), JSON.stringify(v.violations())).to.equal(true);
  };
  const all = (): NotificationRequested[] => [...as1.received, ...as2.received];

  before(async () => {
    schemas = await loadT8Schemas();
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0' } });
    svc = await startInstance(mesh, logs, policy.decide, { MO_SMS_APPLICATION_PORTS: PORTS });
    as1 = await NotificationWatcher.open(mesh.nats.url, mesh.stateDir, 'as1');
    as2 = await NotificationWatcher.open(mesh.nats.url, mesh.stateDir, 'as2');
    policy.grants.set('as1', { targets: [`externalId:${UE1.externalId}`], categories: [MO_SMS_CATEGORY] });
    policy.grants.set('as2', { targets: [`externalId:${UE1.externalId}`], categories: [MO_SMS_CATEGORY] });
  });

  after(async () => {
    await as1?.close();
    await as2?.close();
    await svc?.stop();
    await mesh?.stop();
  });

  it("notifies the port's SCS/AS with an MsisdnLessMoSmsNotification, authorized as notify on the UE", async () => {
    const mo = { externalId: UE1.externalId, applicationPort: 16000, sms: sms('meter 42') };
    await send(mo);
    expect(as2.received).to.have.length(0);
    expect(as1.received).to.have.length(1);
    const [n] = as1.received;
    expect(n).to.deep.include({ scsAsId: 'as1', api: MSISDN_LESS_MO_SMS_API, destination: AS1_SMS });
    expect(n.subscriptionId).to.match(UUID);
    valid(bodyOf(n));
    expect(bodyOf(n)).to.deep.equal({ supportedFeatures: '0', ...mo });
    expect(policy.asked).to.deep.include({
      scsAsId: 'as1',
      api: MSISDN_LESS_MO_SMS_API,
      operation: 'notify',
      dataCategories: [MO_SMS_CATEGORY],
      targets: [`externalId:${UE1.externalId}`],
      pathScsAsId: 'as1',
    });

    // Another port, another SCS/AS: as2 gets it, as1 does not.
    await send({ ...mo, applicationPort: 16001 });
    expect(as1.received).to.have.length(1);
    expect(as2.received.map(x => [x.destination, bodyOf(x)['applicationPort']])).to.deep.equal([[AS2_SMS, 16001]]);
  });

  it('sends nothing for a UE the SCS/AS was not granted: the decision refuses it', async () => {
    const before = all().length;
    await send({ externalId: UE2.externalId, applicationPort: 16000, sms: sms('not yours') });
    expect(all()).to.have.length(before);
    expect(policy.asked.some(r => r.operation === 'notify' && r.targets.includes(`externalId:${UE2.externalId}`))).to.equal(true);
    expect(logs.some(l => l.includes('notification dropped') && l.includes('denied by policy') && l.includes(MSISDN_LESS_MO_SMS_API))).to.equal(true);
  });

  it('delivers nothing, and asks nothing, for an unconfigured port, an unknown UE, a malformed SMS or a refused destination', async () => {
    const before = all().length;
    const asked = policy.asked.length;
    const mo = { externalId: UE1.externalId, applicationPort: 16000, sms: sms('x') };
    await send({ ...mo, applicationPort: 17000 });
    await send({ ...mo, externalId: 'ghost@scef.test' });
    await send({ ...mo, sms: 'not base64!' });
    await send({ ...mo, sms: Buffer.alloc(MAX_SMS_BYTES + 1).toString('base64') });
    await send({ ...mo, applicationPort: 16002 });
    expect(all()).to.have.length(before);
    expect(policy.asked).to.have.length(asked);
  });

  it('has no route: the SCS/AS never calls this API', async () => {
    const module = svc.registry.list().find(m => m.name === MSISDN_LESS_MO_SMS_API);
    expect(module?.routes).to.deep.equal([]);
    const client = edgeClient(mesh, svc.port);
    try {
      for (const path of [`/${MSISDN_LESS_MO_SMS_API}/v1/as1`, `/${MSISDN_LESS_MO_SMS_API}/v1/as1/anything`, `/${MSISDN_LESS_MO_SMS_API}/v1/`]) {
        const a = await t8(client, { method: 'GET', path, scopes: [MSISDN_LESS_MO_SMS_API] });
        expect([a.status, (a.json as Json)['cause']], path).to.deep.equal([404, 'RESOURCE_NOT_FOUND']);
      }
    } finally {
      client.close();
    }
  });

  it('simulated UEs report in with an MO SMS to their port when they become reachable', async () => {
    const ues = Array.from({ length: 20 }, (_, i) => simulatedUeIdentifiers(i + 1));
    const grant = { targets: ues.map(u => `externalId:${u.externalId}`), categories: [MO_SMS_CATEGORY] };
    policy.grants.set('as1', grant);
    policy.grants.set('as2', grant);
    const earlier = new Set(all().map(n => n.notificationId));
    let reported: NotificationRequested | undefined;
    for (let i = 0; i < 300 && !reported; i++) {
      await svc.simulator!.advance();
      await as1.settle();
      reported = all().find(n => !earlier.has(n.notificationId));
    }
    expect(reported, 'an MO SMS from a simulated UE').to.not.equal(undefined);
    const body = bodyOf(reported!);
    valid(body);
    const ue = (await svc.network.findUe({ externalId: body['externalId'] as string }))!;
    expect((await svc.network.reachability(ue)).reachable, 'it was sent by a UE that is reachable').to.equal(true);
    expect(Buffer.from(body['sms'] as string, 'base64')).to.have.length(16);
    expect([16000, 16001]).to.include(body['applicationPort']);
    expect(reported!.destination).to.equal(body['applicationPort'] === 16000 ? AS1_SMS : AS2_SMS);
  });

  describe('MO_SMS_APPLICATION_PORTS', () => {
    it('reads <port>:<scsAsId>:<https URL> entries', () => {
      expect(parseMoSmsRoutes(' 1:as1:https://a.example.com/x , 65535:as.2_x:https://b.example.com:8443/y?z=1 ', 'V')).to.deep.equal([
        { applicationPort: 1, scsAsId: 'as1', notificationDestination: 'https://a.example.com/x' },
        { applicationPort: 65535, scsAsId: 'as.2_x', notificationDestination: 'https://b.example.com:8443/y?z=1' },
      ]);
      expect(loadConfig(CAPABILITY_EXPOSURE_SETTINGS, {}).moSmsApplicationPorts).to.deep.equal([]);
      expect(loadConfig(CAPABILITY_EXPOSURE_SETTINGS, { MO_SMS_APPLICATION_PORTS: PORTS }).moSmsApplicationPorts).to.have.length(3);
    });

    it('stops the service at start-up on a malformed entry, naming the variable and the entry', () => {
      const refused: [string, string][] = [
        ['16000:as1', 'entry 1 is not <port>:<scsAsId>:<https URL>'],
        ['x:as1:https://a.example.com/', 'entry 1 is not <port>:<scsAsId>:<https URL>'],
        ['70000:as1:https://a.example.com/', 'entry 1 has a port beyond 65535'],
        ['1:as1:https://a.example.com/, 1:as2:https://b.example.com/', 'entry 2 repeats a port'],
        ['1:as 1:https://a.example.com/', 'entry 1 has an scsAsId'],
        ['1:as1:http://a.example.com/', 'entry 1 has a destination that does not use https'],
        ['1:as1:https://user:pw@a.example.com/', 'entry 1 has a destination with user information'],
        ['1:as1:not a uri', 'entry 1 has a destination that is not an absolute URI'],
        [`1:as1:https://a.example.com/${'x'.repeat(2048)}`, 'entry 1 has a destination longer than'],
      ];
      for (const [raw, why] of refused) {
        let err: unknown;
        try {
          loadConfig(CAPABILITY_EXPOSURE_SETTINGS, { MO_SMS_APPLICATION_PORTS: raw });
        } catch (e) {
          err = e;
        }
        expect(err, raw).to.be.instanceOf(ConfigError);
        expect((err as Error).message, raw).to.include(`setting MO_SMS_APPLICATION_PORTS: ${why}`);
      }
    });
  });
});
