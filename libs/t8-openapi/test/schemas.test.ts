import { expect } from 'chai';
import { loadT8Schemas } from '../src/index.ts';
import type { T8Schemas } from '../src/index.ts';

const SUB = {
  notificationDestination: 'https://as.example/notify',
  monitoringType: 'LOCATION_REPORTING',
  maximumNumberOfReports: 1,
  externalId: 'ue1@scef.test',
};

describe('t8-openapi schema validation', () => {
  let schemas: T8Schemas;
  before(async function () {
    this.timeout(30_000);
    schemas = await loadT8Schemas();
  });

  it('loads once and reports its load time', async () => {
    expect(await loadT8Schemas()).to.equal(schemas);
    expect(schemas.loadMs).to.be.greaterThan(0);
    expect(schemas.transformStats.objectsClosed).to.be.greaterThan(0);
  });

  it('accepts a valid MonitoringEventSubscription and rejects one missing required members', () => {
    const v = schemas.validator('monitoring-event', 'MonitoringEventSubscription');
    expect(v(SUB)).to.equal(true);
    const { notificationDestination: _, ...noDest } = SUB;
    expect(v(noDest)).to.equal(false);
    expect(v.violations()).to.deep.equal([{ param: '/notificationDestination', reason: "must have required property 'notificationDestination'" }]);
    const { maximumNumberOfReports: __, ...neither } = SUB;
    expect(v(neither)).to.equal(false); // anyOf maximumNumberOfReports | monitorExpireTime
  });

  it('requests are closed: an unknown member at any depth is rejected, the known ones pass', () => {
    const v = schemas.validator('monitoring-event', 'MonitoringEventSubscription');
    expect(v({ ...SUB, scsAsId: 'other' })).to.equal(false);
    expect(v.violations()).to.deep.equal([{ param: '/scsAsId', reason: 'unknown member' }]);
    expect(v({ ...SUB, locationArea: { cellIds: ['c1'], extra: 1 } })).to.equal(false);
    expect(v.violations()[0].param).to.equal('/locationArea/extra');
    expect(v({ ...SUB, locationArea: { cellIds: ['c1'] } })).to.equal(true);
  });

  it('responses are validated open (the published schemas allow extensions)', () => {
    const v = schemas.validator('monitoring-event', 'MonitoringEventSubscription', 'response');
    expect(v({ ...SUB, vendorExtension: 1 })).to.equal(true);
    expect(v({ ...SUB, maximumNumberOfReports: 0 })).to.equal(false);
  });

  it('keeps types and formats: wrong types and bad date-times are rejected without echoing values', () => {
    const v = schemas.validator('monitoring-event', 'MonitoringEventSubscription');
    expect(v({ ...SUB, maximumNumberOfReports: 'one' })).to.equal(false);
    expect(v({ ...SUB, maximumNumberOfReports: undefined, monitorExpireTime: 'tomorrow' })).to.equal(false);
    expect(JSON.stringify(v.violations())).to.not.include('tomorrow');
    expect(v({ ...SUB, externalId: 42 })).to.equal(false);
    expect(JSON.stringify(v.violations())).to.not.include('42');
  });

  it('validates by JSON pointer: the json-patch body of MonitoringEvent PATCH', () => {
    const v = schemas.validator('monitoring-event', '#/paths/~1{scsAsId}~1subscriptions~1{subscriptionId}/patch/requestBody/content/application~1json-patch+json/schema');
    expect(v([{ op: 'replace', path: '/maximumNumberOfReports', value: 3 }])).to.equal(true);
    expect(v([])).to.equal(false);
    expect(v([{ op: 'explode', path: '/x' }])).to.equal(true); // PatchOperation is an extensible enum (anyOf string)
    expect(v([{ path: '/x' }])).to.equal(false);
  });

  it('AsSessionWithQoS and CommonData: subscription, notification and ProblemDetails', () => {
    const qos = schemas.validator('as-session-with-qos', 'AsSessionWithQoSSubscription');
    expect(qos({ notificationDestination: 'https://as.example/n', ueIpv4Addr: '10.0.0.1', qosReference: 'qos-gold' })).to.equal(true);
    expect(qos({ ueIpv4Addr: '10.0.0.1' })).to.equal(false);
    const notif = schemas.validator('as-session-with-qos', 'UserPlaneNotificationData', 'response');
    expect(notif({ transaction: 'https://scef/x', eventReports: [{ event: 'QOS_GUARANTEED' }] })).to.equal(true);
    expect(notif({ transaction: 'https://scef/x', eventReports: [] })).to.equal(false);
    const pd = schemas.validator('common-data', 'ProblemDetails', 'response');
    expect(pd({ status: 400, title: 'Bad Request', invalidParams: [{ param: '/a', reason: 'r' }] })).to.equal(true);
    expect(pd({ status: 'bad' })).to.equal(false);
  });

  it('refuses names that are not in the file', () => {
    expect(() => schemas.validator('monitoring-event', 'NoSuchSchema')).to.throw(TypeError, /no schema/);
  });
});
