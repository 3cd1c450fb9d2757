import { createHash } from 'node:crypto';
import type { T8Schemas } from '@aese/t8-openapi';
import type { ApiModule, PendingNotification } from '../modules/registry.js';
import type { NetworkEvent } from '../network/network-adapter.js';
import type { Decide, Obligation } from './decision.js';
import { PublishUnconfirmed } from './notification-sink.js';
import type { NotificationSink } from './notification-sink.js';
import { applyOwnObligations } from './obligations.js';
import { ReportLedger } from './report-ledger.js';
import type { Settlement } from './report-ledger.js';
import type { ResourceStore, StoredResource } from './resource-store.js';

export interface NotificationEngineDeps {
  readonly modules: () => readonly ApiModule[];
  readonly decide: Decide;
  readonly sink: NotificationSink;
  /** Where the subscriptions are: reports are counted in their state. */
  readonly store: ResourceStore;
  readonly schemas: T8Schemas;
  readonly now: () => number;
  readonly newId: () => string;
  /** Why a notification was not sent (denied, authorization down, publish failed); no UE data. */
  readonly onDrop: (reason: string, record: StoredResource, err?: unknown) => void;
  /** An event not reported because every report the subscription has left is sent or in flight. */
  readonly onLimitReached?: (record: StoredResource) => void;
}

/** The edge's signed word on what became of a notification. */
export interface NotificationOutcomeReport {
  readonly notificationId: string;
  readonly scsAsId: string;
  readonly api: string;
  readonly subscriptionId: string;
  readonly delivered: boolean;
}

/**
 * Turns network events into notifications. Each one is authorized again when it is produced
 * (operation "notify", the subscription's targets and the event's data category), because grants
 * can be withdrawn after a subscription was made: a denial, or authorization being unreachable,
 * drops the notification (fail closed). Obligations this service owns are applied, the body is
 * validated against the API's notification schema, and it is published for the edge with the
 * other obligations and their parameters. A report that counts toward a limit is reserved before
 * it is published and counted when the edge reports it delivered ({@link ReportLedger}).
 */
export class NotificationEngine {
  private readonly ledger: ReportLedger;

  constructor(private readonly deps: NotificationEngineDeps) {
    this.ledger = new ReportLedger({
      store: deps.store,
      now: deps.now,
      limitOf: record =>
        deps
          .modules()
          .find(m => m.name === record.api)
          ?.reportLimit?.(record),
    });
  }

  /** Applies the edge's outcome of a notification to its subscription's report count. */
  settle(outcome: NotificationOutcomeReport): Promise<Settlement> {
    return this.ledger.settle(outcome.api, outcome.scsAsId, outcome.subscriptionId, outcome.notificationId, outcome.delivered);
  }

  /**
   * Handles one network event to the end (all its notifications published or dropped). An event
   * with an id gets notification ids derived from it: handled again (redelivered after a replica
   * died mid-way), its notifications reuse their ids, which JetStream stores once.
   */
  async handle(event: NetworkEvent): Promise<void> {
    const seen = new Map<string, number>();
    for (const module of this.deps.modules()) {
      if (!module.onNetworkEvent) continue;
      for (const pending of await module.onNetworkEvent(event)) {
        const { api, scsAsId, id } = pending.record;
        const key = `${api}\n${scsAsId}\n${id}`;
        const nth = seen.get(key) ?? 0;
        seen.set(key, nth + 1);
        await this.deliver(module, pending, event.id === undefined ? this.deps.newId() : notificationIdOf(event.id, key, nth));
      }
    }
  }

  /** Publishes the TestNotification (TS 29.122 clause 5.2.5.3) of a subscription just created. */
  async sendTest(record: StoredResource): Promise<void> {
    const body = { subscription: record.resource['self'] };
    const validate = this.deps.schemas.validator('common-data', 'TestNotification', 'response');
    if (!validate(body)) throw new TypeError('test notification does not match TestNotification');
    await this.publish(record, body, [], this.deps.newId());
  }

  private async deliver(module: ApiModule, pending: PendingNotification, notificationId: string): Promise<void> {
    const { record } = pending;
    let allowed: boolean;
    let obligations;
    try {
      // The API is the module's, not the record's storage key (a sub-resource has its own).
      const d = await this.deps.decide({
        scsAsId: record.scsAsId,
        api: module.name,
        operation: 'notify',
        dataCategories: pending.dataCategories,
        targets: record.targets,
        pathScsAsId: record.scsAsId,
      });
      allowed = d.allowed;
      obligations = d.obligations;
    } catch (err) {
      this.deps.onDrop('authorization unavailable', record, err);
      return;
    }
    if (!allowed) {
      this.deps.onDrop('denied by policy', record);
      return;
    }
    const { body, remaining } = applyOwnObligations(pending.body, obligations);
    const schema = pending.schema ?? module.notificationSchema;
    if (schema === undefined) {
      this.deps.onDrop('the API declares no notification schema', record);
      return;
    }
    const validate = this.deps.schemas.validator(module.schemaFile, schema, 'response');
    if (!validate(body)) {
      this.deps.onDrop('notification body breaks its schema', record, new TypeError(JSON.stringify(validate.violations())));
      return;
    }
    const counted = this.ledger.counts(record);
    if (counted) {
      let reserved: boolean;
      try {
        reserved = await this.ledger.reserve(record, notificationId);
      } catch (err) {
        // Fail safe: a report that cannot be counted is not sent.
        this.deps.onDrop('report count unavailable', record, err);
        return;
      }
      if (!reserved) {
        this.deps.onLimitReached?.(record);
        return;
      }
    }
    try {
      await this.publish(record, body, remaining, notificationId, pending.destination, module.name);
    } catch (err) {
      // Surely not published: its report is free again. Maybe published: its outcome settles it.
      if (counted && !(err instanceof PublishUnconfirmed)) {
        await this.ledger.release(record, notificationId).catch((e: unknown) => this.deps.onDrop('report reservation not freed', record, e));
      }
      this.deps.onDrop('publish failed', record, err);
    }
  }

  private publish(record: StoredResource, body: unknown, obligations: readonly Obligation[], notificationId: string, destination?: string, api = record.api): Promise<void> {
    return this.deps.sink.publish({
      notificationId,
      scsAsId: record.scsAsId,
      api,
      subscriptionId: record.id,
      destination: destination ?? (record.resource['notificationDestination'] as string),
      body,
      obligations,
      createdAtMs: this.deps.now(),
    });
  }
}

/** A UUID-shaped id, the same for the same event, subscription and position. */
function notificationIdOf(eventId: string, subscriptionKey: string, nth: number): string {
  const h = createHash('sha256').update(`aese-notification-id/v1\n${eventId}\n${subscriptionKey}\n${nth}`).digest();
  h[6] = (h[6] & 0x0f) | 0x80;
  h[8] = (h[8] & 0x3f) | 0x80;
  const x = h.subarray(0, 16).toString('hex');
  return `${x.slice(0, 8)}-${x.slice(8, 12)}-${x.slice(12, 16)}-${x.slice(16, 20)}-${x.slice(20)}`;
}
