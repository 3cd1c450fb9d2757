import { createHash, randomUUID } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { ensureStream } from './streams.js';
import { AUDIT_STREAM, AUDIT_SUBJECT_PREFIX } from './subjects.js';

/** What an audit event records. No secrets and no UE identifiers: actors are scsAsIds or SPIFFE IDs. */
export interface AuditRecord {
  /** Who acted: an scsAsId, a SPIFFE ID, or `unknown` for an unidentified peer. */
  readonly actor: string;
  /** What was attempted, e.g. `t8.request`, `token.issue`, `policy.apply`, `key.rotate`. */
  readonly action: string;
  readonly decision: 'deny' | 'allow' | 'change';
  /** Stable reason code, e.g. `REPLAYED`, `INVALID_TOKEN`, `CATEGORY_NOT_GRANTED`. */
  readonly reason: string;
  readonly traceId?: string;
  /** Extra non-sensitive detail (an API name, a version number). */
  readonly detail?: Readonly<Record<string, string | number | boolean>>;
}

/** An audit event as stored: the record plus its place in the publisher's hash chain. */
export interface AuditEvent extends AuditRecord {
  readonly id: string;
  readonly service: string;
  /** The publishing instance; each instance writes one chain. */
  readonly chain: string;
  /** 1, 2, 3 ... within the chain: a removed event leaves a gap. */
  readonly seq: number;
  readonly at: string;
  readonly prevHash: string;
  /** SHA-256 over prevHash and the event without this field: an altered event breaks it. */
  readonly hash: string;
}

const GENESIS = '0'.repeat(64);

/** The hash of an event (every field but `hash`, in a fixed order). */
export function auditHash(event: Omit<AuditEvent, 'hash'>): string {
  const canonical = JSON.stringify([
    event.prevHash,
    event.id,
    event.service,
    event.chain,
    event.seq,
    event.at,
    event.actor,
    event.action,
    event.decision,
    event.reason,
    event.traceId ?? '',
    event.detail ? Object.entries(event.detail).sort(([a], [b]) => a.localeCompare(b)) : [],
  ]);
  return createHash('sha256').update(canonical).digest('hex');
}

/** Creates the audit stream if it is missing. */
export async function ensureAuditStream(nc: NatsConnection): Promise<void> {
  await ensureStream(nc, { name: AUDIT_STREAM, subjects: [`${AUDIT_SUBJECT_PREFIX}.>`], max_msg_size: 16 * 1024 });
}

/** Where audit events go; the NATS implementation below, an array in unit tests. */
export interface AuditSink {
  write(event: AuditEvent): Promise<void>;
}

/**
 * Appends audit events to this instance's hash chain. Writes are queued and sent in order, so
 * a request never waits for the audit trail; `flush()` waits for everything queued.
 */
export class AuditLog {
  private readonly chain = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
  private seq = 0;
  private prevHash = GENESIS;
  private tail: Promise<void> = Promise.resolve();

  constructor(
    private readonly service: string,
    private readonly sink: AuditSink,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  record(record: AuditRecord): void {
    const base: Omit<AuditEvent, 'hash'> = {
      ...record,
      id: randomUUID(),
      service: this.service,
      chain: this.chain,
      seq: ++this.seq,
      at: new Date().toISOString(),
      prevHash: this.prevHash,
    };
    const event: AuditEvent = { ...base, hash: auditHash(base) };
    this.prevHash = event.hash;
    this.tail = this.tail.then(() => this.sink.write(event)).catch(this.onError);
  }

  flush(): Promise<void> {
    return this.tail;
  }
}

/** Audit events on JetStream: subject `aese.audit.v1.<service>.<chain>`. */
export class NatsAuditSink implements AuditSink {
  constructor(private readonly nc: NatsConnection) {}

  async write(event: AuditEvent): Promise<void> {
    await this.nc.jetstream().publish(`${AUDIT_SUBJECT_PREFIX}.${event.service}.${event.chain}`, Buffer.from(JSON.stringify(event)));
  }
}

/** A break found by {@link verifyAuditTrail}. */
export interface AuditBreak {
  readonly chain: string;
  readonly seq: number;
  readonly problem: 'ALTERED' | 'MISSING' | 'MALFORMED' | 'OUT_OF_ORDER';
}

/** Checks every chain: sequence without gaps, each hash correct and linked to the previous one. */
export function verifyAuditTrail(events: readonly AuditEvent[]): { chains: number; events: number; breaks: AuditBreak[] } {
  const byChain = new Map<string, AuditEvent[]>();
  for (const e of events) byChain.set(e.chain, [...(byChain.get(e.chain) ?? []), e]);
  const breaks: AuditBreak[] = [];
  for (const [chain, list] of byChain) {
    let prev = GENESIS;
    let expected = 1;
    for (const e of list) {
      if (typeof e.seq !== 'number' || typeof e.hash !== 'string') {
        breaks.push({ chain, seq: expected, problem: 'MALFORMED' });
        continue;
      }
      const gap = e.seq !== expected;
      if (e.seq < expected) breaks.push({ chain, seq: e.seq, problem: 'OUT_OF_ORDER' });
      else if (e.seq > expected) breaks.push({ chain, seq: expected, problem: 'MISSING' });
      const { hash, ...rest } = e;
      // After a gap the link to the previous hash is broken by the gap itself; the event's own
      // hash still tells whether it was altered.
      if (auditHash(rest) !== hash || (!gap && e.prevHash !== prev)) breaks.push({ chain, seq: e.seq, problem: 'ALTERED' });
      prev = hash;
      expected = e.seq + 1;
    }
  }
  return { chains: byChain.size, events: events.length, breaks };
}

/** Reads every audit event currently in the stream, in stream order. */
export async function readAuditTrail(nc: NatsConnection, limit = 1_000_000): Promise<AuditEvent[]> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(AUDIT_STREAM);
  const out: AuditEvent[] = [];
  if (info.state.messages === 0) return out;
  const consumer = await nc.jetstream().consumers.get(AUDIT_STREAM);
  const messages = await consumer.fetch({ max_messages: Math.min(limit, info.state.messages), expires: 2000 });
  for await (const m of messages) {
    try {
      out.push(JSON.parse(Buffer.from(m.data).toString('utf8')) as AuditEvent);
    } catch {
      out.push({ chain: 'malformed', seq: Number.NaN } as unknown as AuditEvent);
    }
    if (m.seq >= info.state.last_seq || out.length >= limit) break;
  }
  return out;
}
