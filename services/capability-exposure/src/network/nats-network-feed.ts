import { randomUUID } from 'node:crypto';
import { AckPolicy, DeliverPolicy } from 'nats';
import type { ConsumerMessages, JsMsg, NatsConnection } from 'nats';
import type { AuditLog, EventSigner, EventVerifier } from '@aese/events';
import {
  ensureNetworkEventStream,
  NETWORK_EVENTS_STREAM,
  NETWORK_EVENTS_SUBJECT_PREFIX,
  networkEventSubject,
  openNetworkEvent,
  signNetworkEvent,
  untilKeysAnswer,
} from '@aese/events';
import type { Logger } from '@aese/logger';
import { retryJetStream } from '@aese/nats';
import { newCapabilityEvent } from './capability-event.js';
import type {
  CapabilityEventInput,
  NetworkAdapter,
  NetworkIdentities,
  NetworkListener,
  QosSession,
  QosSessionRequest,
  UeLocation,
  UeReachability,
  UeRef,
  UeRoaming,
  UeView,
} from './network-adapter.js';
import { decodeNetworkRecord, encodeNetworkRecord } from './network-event-codec.js';
import type { NetworkRecord } from './network-event-codec.js';
import { NetworkOwnerLease } from './network-owner-lease.js';
import type { SimulatedCore } from './simulated-core.js';

/** The durable consumer every capability-exposure replica shares: each event goes to one of them. */
export const NETWORK_EVENT_CONSUMER = 'capability-exposure-network-events';
/** An event whose handling failed is offered again (to any replica) after this. */
const RETRY_MS = 1_000;
/** An event not acknowledged within this (its replica died) goes to another replica. */
const ACK_WAIT_MS = 30_000;
/** Events a replica takes at a time: small, so that the others get their share. */
const BATCH = 16;
/** A mirror consumer nobody pulls from for this long (its replica is gone) is removed by the server. */
const MIRROR_INACTIVE_MS = 60_000;

export interface NatsNetworkFeedOptions {
  readonly nc: NatsConnection;
  /** This replica's copy of the simulated network. */
  readonly core: SimulatedCore;
  /** Signs what this replica publishes (crypto, event-signing key, capability exposure's place). */
  readonly signer: EventSigner;
  readonly verifier: EventVerifier;
  readonly logger: Logger;
  readonly audit: AuditLog;
  /** Interval of the network's tick while this replica owns it; 0: only advance() ticks. */
  readonly tickMs: number;
  readonly leaseMs: number;
  readonly replicaId?: string;
}

/** What this replica did with the shared network, for operators and tests. */
export interface NetworkFeedStats {
  /** Events this replica's copy produced, and capability events emitted here, published. */
  readonly published: number;
  /** Events the shared consumer gave this replica, handled to the end. */
  readonly handled: number;
  /** Records refused: not signed for the network-event place, malformed, or expired. */
  readonly refused: number;
}

/**
 * The simulated network shared by every capability-exposure replica through JetStream. One
 * replica at a time owns it ({@link NetworkOwnerLease}) and ticks its copy; what its copy emits,
 * and the session changes any replica makes, are signed and published to the network-event
 * stream. Every replica mirrors that stream into its own copy (so queries answer the same
 * everywhere and a replica taking over continues from the network's state), and one shared
 * durable consumer hands each event to exactly one replica's listeners, acknowledged once they
 * have published or dropped its notifications. A module's capability event ({@link emit}) takes
 * the same way. A record that does not verify changes nothing.
 */
export class NatsNetworkFeed implements NetworkAdapter {
  private readonly listeners = new Set<NetworkListener>();
  private readonly stoppers: (() => Promise<void> | void)[] = [];
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private counts = { published: 0, handled: 0, refused: 0 };

  private constructor(
    private readonly options: NatsNetworkFeedOptions,
    private readonly lease: NetworkOwnerLease,
    /** This replica, as its records and the lease name it. */
    readonly replicaId: string,
  ) {}

  static async open(options: NatsNetworkFeedOptions): Promise<NatsNetworkFeed> {
    const replicaId = options.replicaId ?? randomUUID();
    await ensureNetworkEventStream(options.nc);
    const lease = await NetworkOwnerLease.open({ nc: options.nc, replicaId, leaseMs: options.leaseMs, logger: options.logger });
    const feed = new NatsNetworkFeed(options, lease, replicaId);
    try {
      feed.stoppers.push(options.core.subscribe(e => feed.publish({ origin: replicaId, event: { ...e, id: randomUUID() } })));
      feed.stoppers.push(options.core.onSessionChange(c => feed.publish({ origin: replicaId, session: c })));
      await feed.followMirror();
      await feed.followWork();
    } catch (err) {
      await feed.stop();
      throw err;
    }
    if (options.tickMs > 0) {
      feed.timer = setInterval(() => {
        // A tick still running when the next is due makes the core skip that one.
        if (lease.owned()) options.core.tickOnTimer();
      }, options.tickMs);
      feed.timer.unref();
    }
    return feed;
  }

  /** Whether this replica runs the network now. */
  owner(): boolean {
    return this.lease.owned();
  }

  stats(): NetworkFeedStats {
    return { ...this.counts };
  }

  private async publish(record: NetworkRecord): Promise<void> {
    const subject = 'event' in record ? networkEventSubject(`event.${record.event.kind}`) : networkEventSubject('session');
    const atMs = 'event' in record ? record.event.atMs : Date.now();
    const data = await signNetworkEvent(this.options.signer, subject, encodeNetworkRecord(record), atMs);
    const msgID = 'event' in record ? record.event.id : undefined;
    await this.options.nc.jetstream().publish(subject, data, msgID ? { msgID } : {});
    if ('event' in record) this.counts.published++;
  }

  /** Verifies and reads one stream message; undefined for a refused one (`judge` is told why). */
  private async open(m: JsMsg, judge: (reason: string) => void): Promise<NetworkRecord | undefined> {
    const opened = await untilKeysAnswer(() => openNetworkEvent(this.options.verifier, m.subject, m.data, Date.now()), {
      stopped: () => this.stopping,
      onWait: (err, waits) => {
        if (waits === 1) this.options.logger.warn({ err }, 'network event waits for event-signing keys');
        m.working();
      },
    });
    if (!opened) return undefined;
    if (!opened.ok) {
      judge(opened.reason);
      return undefined;
    }
    const record = await decodeNetworkRecord(opened.payload, externalId => this.options.core.findUe({ externalId }));
    if (!record) judge('MALFORMED');
    return record;
  }

  /** Every replica applies every record of the others to its copy, in stream order. */
  private async followMirror(): Promise<void> {
    // A consumer of this replica's own, removed by the server once the replica is gone.
    const name = `capability-exposure-mirror-${this.replicaId}`;
    const jsm = await retryJetStream(() => this.options.nc.jetstreamManager());
    await retryJetStream(() =>
      jsm.consumers.add(NETWORK_EVENTS_STREAM, { name, ack_policy: AckPolicy.None, deliver_policy: DeliverPolicy.All, inactive_threshold: MIRROR_INACTIVE_MS * 1_000_000 }),
    );
    const consumer = await retryJetStream(() => this.options.nc.jetstream().consumers.get(NETWORK_EVENTS_STREAM, name));
    const messages = await consumer.consume({ max_messages: 256 });
    this.follow(messages, async m => {
      const record = await this.open(m, reason => this.options.logger.debug({ reason, seq: m.seq }, 'network record not mirrored'));
      if (!record || record.origin === this.replicaId) return;
      if ('event' in record) this.options.core.mirror(record.event);
      else this.options.core.mirrorSession(record.session);
    });
  }

  /** The shared work queue: each event to one replica, acknowledged once handled. */
  private async followWork(): Promise<void> {
    const { nc, logger, audit } = this.options;
    const jsm = await retryJetStream(() => nc.jetstreamManager());
    await retryJetStream(() =>
      jsm.consumers.add(NETWORK_EVENTS_STREAM, {
        durable_name: NETWORK_EVENT_CONSUMER,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.New,
        filter_subject: `${NETWORK_EVENTS_SUBJECT_PREFIX}.event.>`,
        ack_wait: ACK_WAIT_MS * 1_000_000,
      }),
    );
    const consumer = await retryJetStream(() => nc.jetstream().consumers.get(NETWORK_EVENTS_STREAM, NETWORK_EVENT_CONSUMER));
    const messages = await consumer.consume({ max_messages: BATCH });
    this.follow(messages, async m => {
      const record = await this.open(m, reason => {
        m.term();
        this.counts.refused++;
        logger.warn({ reason, seq: m.seq }, 'network event refused: not signed by capability exposure');
        audit.record({ actor: 'unknown', action: 'network.event', decision: 'deny', reason, detail: { seq: m.seq } });
      });
      if (!record) return;
      if (!('event' in record)) {
        m.term();
        return;
      }
      try {
        for (const l of [...this.listeners]) await l(record.event);
        m.ack();
        this.counts.handled++;
      } catch (err) {
        logger.warn({ err, seq: m.seq }, 'network event not handled yet');
        m.nak(RETRY_MS);
      }
    });
  }

  private follow(messages: ConsumerMessages, handle: (m: JsMsg) => Promise<void>): void {
    const done = (async () => {
      for await (const m of messages) await handle(m);
    })().catch((err: unknown) => this.options.logger.error({ err }, 'network event consumer stopped'));
    this.stoppers.push(async () => {
      await messages.close();
      await done;
    });
  }

  findUe(ref: UeRef): Promise<UeView | undefined> {
    return this.options.core.findUe(ref);
  }
  listIdentities(): Promise<NetworkIdentities> {
    return this.options.core.listIdentities();
  }
  groupMembers(externalGroupId: string): Promise<readonly UeView[] | undefined> {
    return this.options.core.groupMembers(externalGroupId);
  }
  locate(ue: UeView): Promise<UeLocation> {
    return this.options.core.locate(ue);
  }
  reachability(ue: UeView): Promise<UeReachability> {
    return this.options.core.reachability(ue);
  }
  roaming(ue: UeView): Promise<UeRoaming> {
    return this.options.core.roaming(ue);
  }
  /** Listeners get the events the shared consumer gives this replica (from any replica's copy). */
  subscribe(listener: NetworkListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  /**
   * Signs and publishes a module's capability event, timed by the network's clock, to the stream:
   * the shared consumer hands it to one replica's listeners (maybe this one's), never also here
   * directly. Resolves once JetStream stored it.
   */
  async emit(input: CapabilityEventInput): Promise<void> {
    const event = newCapabilityEvent(input, this.options.core.nowMs());
    await this.publish({ origin: this.replicaId, event: { ...event, id: randomUUID() } });
  }
  qosReferences(): readonly string[] {
    return this.options.core.qosReferences();
  }
  createQosSession(request: QosSessionRequest): Promise<QosSession> {
    return this.options.core.createQosSession(request);
  }
  updateQosSession(id: string, request: QosSessionRequest): Promise<QosSession | undefined> {
    return this.options.core.updateQosSession(id, request);
  }
  deleteQosSession(id: string): Promise<boolean> {
    return this.options.core.deleteQosSession(id);
  }
  restoreQosSession(id: string, request: QosSessionRequest): Promise<void> {
    return this.options.core.restoreQosSession(id, request);
  }

  /** Stops ticking and hands the network over at once, then stops following the stream; the core stops too. */
  async stop(): Promise<void> {
    this.stopping = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.lease.stop();
    await this.options.core.stop();
    for (const s of this.stoppers.splice(0).reverse()) await s();
  }
}
