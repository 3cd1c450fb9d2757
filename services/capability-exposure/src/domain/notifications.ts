import type { T8Schemas } from '@aese/t8-openapi';
import type { ApiModule, PendingNotification } from '../modules/registry.js';
import type { NetworkEvent } from '../network/network-adapter.js';
import type { Decide } from './decision.js';
import type { NotificationSink } from './notification-sink.js';
import { applyOwnObligations } from './obligations.js';
import type { StoredResource } from './resource-store.js';

export interface NotificationEngineDeps {
  readonly modules: () => readonly ApiModule[];
  readonly decide: Decide;
  readonly sink: NotificationSink;
  readonly schemas: T8Schemas;
  readonly now: () => number;
  readonly newId: () => string;
  /** Why a notification was not sent (denied, authorization down, publish failed); no UE data. */
  readonly onDrop: (reason: string, record: StoredResource, err?: unknown) => void;
}

/**
 * Turns network events into notifications. Each one is authorized again when it is produced
 * (operation "read", the subscription's targets and the event's data category), because grants
 * can be withdrawn after a subscription was made: a denial, or authorization being unreachable,
 * drops the notification (fail closed). Obligations this service owns are applied, the body is
 * validated against the API's notification schema, and it is published for the edge.
 */
export class NotificationEngine {
  constructor(private readonly deps: NotificationEngineDeps) {}

  /** Handles one network event to the end (all its notifications published or dropped). */
  async handle(event: NetworkEvent): Promise<void> {
    for (const module of this.deps.modules()) {
      if (!module.onNetworkEvent) continue;
      for (const pending of await module.onNetworkEvent(event)) await this.deliver(module, pending);
    }
  }

  /** Publishes the TestNotification (TS 29.122 clause 5.2.5.3) of a subscription just created. */
  async sendTest(record: StoredResource): Promise<void> {
    const body = { subscription: record.resource['self'] };
    const validate = this.deps.schemas.validator('common-data', 'TestNotification', 'response');
    if (!validate(body)) throw new TypeError('test notification does not match TestNotification');
    await this.publish(record, body, []);
  }

  private async deliver(module: ApiModule, pending: PendingNotification): Promise<void> {
    const { record } = pending;
    let allowed: boolean;
    let obligations;
    try {
      const d = await this.deps.decide({
        scsAsId: record.scsAsId,
        api: record.api,
        operation: 'read',
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
    const validate = this.deps.schemas.validator(module.schemaFile, module.notificationSchema, 'response');
    if (!validate(body)) {
      this.deps.onDrop('notification body breaks its schema', record, new TypeError(JSON.stringify(validate.violations())));
      return;
    }
    try {
      await this.publish(record, body, remaining.map(o => o.type));
    } catch (err) {
      this.deps.onDrop('publish failed', record, err);
      return;
    }
    await pending.after?.();
  }

  private publish(record: StoredResource, body: unknown, obligations: readonly string[]): Promise<void> {
    return this.deps.sink.publish({
      notificationId: this.deps.newId(),
      scsAsId: record.scsAsId,
      api: record.api,
      subscriptionId: record.id,
      destination: record.resource['notificationDestination'] as string,
      body,
      obligations,
      createdAtMs: this.deps.now(),
    });
  }
}
