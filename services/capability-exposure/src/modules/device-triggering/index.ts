import type { components } from '@aese/t8-openapi/device-triggering';
import { checkNotificationDestination } from '../../domain/notification-destination.js';
import { invalidParam, PROBLEM_CAUSES, T8Problem } from '../../domain/problem.js';
import type { StoredResource } from '../../domain/resource-store.js';
import type { NetworkEvent, UeRef } from '../../network/network-adapter.js';
import type { ApiModule, ModuleDefinition, ModuleRoute, ModuleServices, PendingNotification, Reach, RouteRequest } from '../registry.js';
import { stillAuthorized } from '../toolkit/authorize.js';
import { resourceLifecycle } from '../toolkit/lifecycle.js';
import type { Held } from '../toolkit/lifecycle.js';
import { assertIdentifiersSyntax, identifierTargets } from '../ue-targets.js';
import { smsDeliveryDelayOf } from './settings.js';
import { DEVICE_TRIGGERING_API, readDeliveryReport, SimulatedSmsCentre } from './sms-centre.js';
import type { HeldTrigger } from './sms-centre.js';

export { DEVICE_TRIGGERING_API } from './sms-centre.js';
/** The one data category of device triggers. */
export const DEVICE_TRIGGER_CATEGORY = 'device-trigger';
/** ProblemDetails causes of this API, beside the shared ones. */
export const DEVICE_TRIGGERING_CAUSES = {
  triggerNotPending: 'TRIGGER_NOT_PENDING',
} as const;

type Transaction = components['schemas']['DeviceTriggering'];
type DeliveryReportNotification = components['schemas']['DeviceTriggeringDeliveryReportNotification'];

const P = '#/paths/~1{scsAsId}~1transactions';
const SCHEMAS = {
  transaction: 'DeviceTriggering',
  patch: 'DeviceTriggeringPatch',
  notification: 'DeviceTriggeringDeliveryReportNotification',
  list: `${P}/get/responses/200/content/application~1json/schema`,
} as const;
/** Members naming the UE (the schema requires exactly one); it cannot change afterwards. */
const IDENTIFIERS = { externalId: 'externalId', msisdn: 'msisdn' } as const;
const PRIORITIES: readonly string[] = ['NO_PRIORITY', 'PRIORITY'];
/** Results of a trigger the SMS-SC still holds: accepted, or its replacement accepted. */
const PENDING: readonly unknown[] = ['TRIGGERED', 'REPLACED'];
/** An SMS carries 140 octets, 6 of which address the application port (TS 23.040 9.2.3.24.4). */
export const MAX_TRIGGER_PAYLOAD_BYTES = 134;
/** Longest validity period accepted (a week): the SMS-SC keeps no trigger longer. */
export const MAX_VALIDITY_PERIOD_S = 7 * 24 * 3600;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

interface TriggerState {
  /** Which submission to the SMS-SC the resource is: a replacement is the next one. */
  readonly submission: number;
  readonly submittedAtMs: number;
  /** The network event that ended it: handled again, it notifies again under the same id. */
  readonly endedBy?: string;
}

const isPending = (resource: Record<string, unknown>): boolean => PENDING.includes(resource['deliveryResult']);

function ueRefOf(t: Transaction): UeRef {
  return typeof t.externalId === 'string' ? { externalId: t.externalId } : { msisdn: t.msisdn! };
}

/**
 * 3gpp-device-triggering (TS 29.122 clauses 4.4.6 and 5.7): an AS sends a trigger payload to an
 * application port of one UE (externalId or msisdn); the SCEF hands it to the SMS-SC, which
 * delivers it when the UE can be reached within the validity period. While it is pending
 * (deliveryResult TRIGGERED or REPLACED) the AS may replace it (PUT, or PATCH with a
 * DeviceTriggeringPatch in application/json) or recall it (DELETE); its end (SUCCESS, EXPIRED,
 * FAILURE) is stored in the transaction and notified as a DeviceTriggeringDeliveryReportNotification.
 * The delivery is authorized again when it happens: a trigger its AS may no longer send ends FAILURE.
 */
function createDeviceTriggeringModule(s: ModuleServices): ApiModule {
  const reachOf = (t: Transaction): Reach => ({ dataCategories: [DEVICE_TRIGGER_CATEGORY], targets: identifierTargets(t, IDENTIFIERS) });

  function validate(t: Transaction, req: RouteRequest): void {
    // A create or replace body is the resource; the patch schema has no such member.
    if (typeof req.body === 'object' && req.body !== null && 'deliveryResult' in req.body) {
      throw invalidParam('/deliveryResult', 'is written by the SCEF only', PROBLEM_CAUSES.invalidParameter);
    }
    assertIdentifiersSyntax(t, IDENTIFIERS);
    if (!PRIORITIES.includes(t.priority)) throw invalidParam('/priority', `must be one of ${PRIORITIES.join(', ')}`);
    if (t.validityPeriod > MAX_VALIDITY_PERIOD_S) throw invalidParam('/validityPeriod', `must be at most ${MAX_VALIDITY_PERIOD_S} seconds`);
    if (t.triggerPayload.length === 0 || !BASE64.test(t.triggerPayload)) throw invalidParam('/triggerPayload', 'must be base64 of at least one byte');
    if (Buffer.byteLength(t.triggerPayload, 'base64') > MAX_TRIGGER_PAYLOAD_BYTES) {
      throw invalidParam('/triggerPayload', `must be at most ${MAX_TRIGGER_PAYLOAD_BYTES} bytes: one SMS`);
    }
  }

  /** Once authorized: a trigger that ended cannot be replaced, and where notifications go (DNS). */
  async function check(t: Transaction, req: RouteRequest): Promise<void> {
    if (req.existing && !isPending(req.existing.resource)) {
      throw new T8Problem(409, DEVICE_TRIGGERING_CAUSES.triggerNotPending, 'the trigger has ended (see deliveryResult); it can no longer be replaced');
    }
    await checkNotificationDestination(t.notificationDestination, s.destinations);
  }

  async function assertKnownUe(t: Transaction): Promise<void> {
    if (!(await s.network.findUe(ueRefOf(t)))) {
      throw invalidParam(typeof t.externalId === 'string' ? '/externalId' : '/msisdn', 'is not known to the network', PROBLEM_CAUSES.unknownUe);
    }
  }

  const transactions = resourceLifecycle<Transaction, TriggerState>({
    services: s,
    api: DEVICE_TRIGGERING_API,
    schemaFile: 'device-triggering',
    collection: '/{scsAsId}/transactions',
    idParam: 'transactionId',
    schemas: { resource: SCHEMAS.transaction, list: SCHEMAS.list },
    // The API file's PATCH body is a DeviceTriggeringPatch in application/json: a partial resource.
    patch: { kind: 'partial', schema: SCHEMAS.patch, answer: 200 },
    immutable: Object.keys(IDENTIFIERS),
    immutableCause: PROBLEM_CAUSES.ueIdentifierImmutable,
    reach: reachOf,
    validate,
    check,
    // Submitting is storing: the SMS-SC holds the pending transactions (sms-centre.ts); deleting a
    // pending transaction recalls its trigger.
    network: {
      create: async t => {
        await assertKnownUe(t);
        return { state: { submission: 1, submittedAtMs: s.now() }, set: { deliveryResult: 'TRIGGERED' } };
      },
      update: async (next, held) => {
        await assertKnownUe(next);
        return { state: { submission: held.state.submission + 1, submittedAtMs: s.now() }, set: { deliveryResult: 'REPLACED' } };
      },
    },
  });
  const routes: readonly ModuleRoute[] = transactions.routes;

  const heldTrigger = ({ record, resource, state }: Held<Transaction, TriggerState>): HeldTrigger => ({
    scsAsId: record.scsAsId,
    transactionId: record.id,
    submission: state.submission,
    ue: ueRefOf(resource),
    submittedAtMs: state.submittedAtMs,
    validUntilMs: state.submittedAtMs + resource.validityPeriod * 1000,
  });
  const smsCentre = new SimulatedSmsCentre({
    network: s.network,
    now: s.now,
    held: () =>
      transactions
        .all()
        .filter(h => isPending(h.record.resource))
        .map(heldTrigger),
    // Decided again at delivery, on the transaction as stored (a recalled one is let out nowhere).
    mayDeliver: async t => {
      const record = await s.store.get(DEVICE_TRIGGERING_API, t.scsAsId, t.transactionId);
      return record === undefined ? 'denied' : stillAuthorized(s, DEVICE_TRIGGERING_API, record);
    },
    deliveryDelayMs: smsDeliveryDelayOf(s.settings),
  });

  /** Stores the end the SMS-SC reported, once, for the submission it names; the transaction as ended, if it did now. */
  async function end(event: NetworkEvent & { kind: 'capability' }): Promise<StoredResource | undefined> {
    const report = readDeliveryReport(event);
    if (!report) return undefined;
    let ended: StoredResource | undefined;
    await s.store.update(DEVICE_TRIGGERING_API, report.scsAsId, report.transactionId, current => {
      ended = undefined;
      const state = current?.state as Partial<TriggerState> | undefined;
      // Recalled (deleted), or replaced since: the report is about a trigger the SMS-SC no longer holds.
      if (!current || state?.submission !== report.submission) return undefined;
      if (!isPending(current.resource)) {
        if (event.id !== undefined && state.endedBy === event.id) ended = current;
        return undefined;
      }
      ended = {
        ...current,
        resource: { ...current.resource, deliveryResult: report.result },
        state: { ...current.state, ...(event.id !== undefined ? { endedBy: event.id } : {}) },
        updatedAtMs: s.now(),
      };
      return ended;
    });
    return ended;
  }

  async function onNetworkEvent(event: NetworkEvent): Promise<PendingNotification[]> {
    if (event.kind !== 'capability') return [];
    const ended = await end(event);
    if (!ended) return [];
    const body: DeliveryReportNotification = { transaction: ended.resource['self'] as string, result: ended.resource['deliveryResult'] as string };
    return [{ record: ended, body, dataCategories: [DEVICE_TRIGGER_CATEGORY] }];
  }

  return {
    name: DEVICE_TRIGGERING_API,
    version: 'v1',
    scope: DEVICE_TRIGGERING_API,
    dataCategories: [DEVICE_TRIGGER_CATEGORY],
    schemaFile: 'device-triggering',
    schemas: [SCHEMAS.transaction, SCHEMAS.patch, SCHEMAS.notification],
    notificationSchema: SCHEMAS.notification,
    reach: async body => reachOf(body as Transaction),
    routes,
    onNetworkEvent,
    start: async () => smsCentre.start(),
    stop: () => smsCentre.stop(),
  };
}

/** The DeviceTriggering module, as registered. */
export const deviceTriggeringModule: ModuleDefinition = { name: DEVICE_TRIGGERING_API, causes: DEVICE_TRIGGERING_CAUSES, create: createDeviceTriggeringModule };
