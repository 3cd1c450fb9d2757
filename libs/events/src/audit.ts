import { createHash, randomUUID } from 'node:crypto';
import type { NatsConnection } from 'nats';
import { activeTraceId } from '@aese/telemetry';
import type { EventSigner } from './signing.js';
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

/**
 * A chain head signed by the crypto service (an audit-signing key no writer of NATS holds). It
 * names the head event and its position in the audit stream, so an event it covers cannot be
 * removed, re-hashed or moved, and the positions of every chain interleaved before it are fixed.
 */
export interface AuditCheckpoint {
  readonly kind: 'checkpoint';
  readonly service: string;
  readonly chain: string;
  /** The head event's seq and hash. */
  readonly seq: number;
  readonly hash: string;
  /** The head event's stream sequence in the audit stream. */
  readonly position: number;
  readonly at: string;
  readonly kid: string;
  /** Raw signature (base64url) over {@link checkpointSignedBytes}. */
  readonly signature: string;
}

/** The bytes a checkpoint signature covers: a fixed label and every field, in a fixed order. */
export function checkpointSignedBytes(c: Omit<AuditCheckpoint, 'kind' | 'kid' | 'signature'>): Buffer {
  return Buffer.from(JSON.stringify(['aese.audit.checkpoint.v1', c.service, c.chain, c.seq, c.hash, c.position, c.at]), 'utf8');
}

/** The subject of a chain's checkpoints, beside its events (the writer's own subject space). */
export function checkpointSubject(service: string, chain: string): string {
  return `${AUDIT_SUBJECT_PREFIX}.${service}.${chain}.checkpoint`;
}

const GENESIS = '0'.repeat(64);
/** How long after the last event a chain head is signed: one checkpoint per burst, not per event. */
export const DEFAULT_CHECKPOINT_DELAY_MS = 1000;
const MAX_CHECKPOINT_RETRY_MS = 30_000;

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
  /** Appends an event; resolves to its position in the trail (the stream sequence), if known. */
  write(event: AuditEvent): Promise<number | void>;
  /** Appends a signed checkpoint (sinks that keep no checkpoints may leave it out). */
  writeCheckpoint?(checkpoint: AuditCheckpoint): Promise<void>;
}

/** Options of an {@link AuditLog}. */
export interface AuditLogOptions {
  /** Signs chain heads (crypto, audit-signing key). Without it the chain is hash-linked only. */
  readonly signer?: EventSigner;
  readonly checkpointDelayMs?: number;
}

/**
 * Appends audit events to this instance's hash chain. Writes are queued and sent in order, so
 * a request never waits for the audit trail; `flush()` waits for everything queued. With a
 * signer, the chain head is signed a moment after each burst and on `flush()`, off the request
 * path: a crypto outage delays checkpoints, never requests or events.
 */
export class AuditLog {
  private readonly chain = `${Date.now().toString(36)}-${randomUUID().slice(0, 8)}`;
  private seq = 0;
  private prevHash = GENESIS;
  private tail: Promise<void> = Promise.resolve();
  /** The last event written, with its stream position when the sink reports one. */
  private head: { seq: number; hash: string; position: number } | undefined;
  private sealedSeq = 0;
  private sealing: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private retryMs: number;

  constructor(
    private readonly service: string,
    private readonly sink: AuditSink,
    private readonly onError: (err: unknown) => void = () => undefined,
    private readonly options: AuditLogOptions = {},
  ) {
    this.retryMs = this.delayMs;
  }

  private get delayMs(): number {
    return this.options.checkpointDelayMs ?? DEFAULT_CHECKPOINT_DELAY_MS;
  }

  record(record: AuditRecord): void {
    // An event recorded inside a traced request or message carries its trace unless told otherwise.
    const traceId = record.traceId ?? activeTraceId();
    const base: Omit<AuditEvent, 'hash'> = {
      ...record,
      ...(traceId === undefined ? {} : { traceId }),
      id: randomUUID(),
      service: this.service,
      chain: this.chain,
      seq: ++this.seq,
      at: new Date().toISOString(),
      prevHash: this.prevHash,
    };
    const event: AuditEvent = { ...base, hash: auditHash(base) };
    this.prevHash = event.hash;
    this.tail = this.tail
      .then(async () => {
        const position = await this.sink.write(event);
        if (typeof position === 'number') this.head = { seq: event.seq, hash: event.hash, position };
        this.schedule(this.delayMs);
      })
      .catch(this.onError);
  }

  /** Waits for every queued event, then signs the head if it is not signed yet. */
  async flush(): Promise<void> {
    await this.tail;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // No retry from here: flush runs at stop, and a retry would outlive the connections.
    await this.seal(false);
  }

  private schedule(ms: number): void {
    if (!this.options.signer || !this.sink.writeCheckpoint || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.seal().catch(() => undefined);
    }, ms);
    this.timer.unref();
  }

  /** Signs and writes the current head; one at a time, retried with backoff on failure. */
  private seal(retry = true): Promise<void> {
    const run = this.sealing.then(async () => {
      const head = this.head;
      const { signer } = this.options;
      if (!head || head.seq <= this.sealedSeq || !signer || !this.sink.writeCheckpoint) return;
      const body = { service: this.service, chain: this.chain, seq: head.seq, hash: head.hash, position: head.position, at: new Date().toISOString() };
      try {
        const { kid, signature } = await signer.sign(checkpointSignedBytes(body));
        await this.sink.writeCheckpoint({ kind: 'checkpoint', ...body, kid, signature: Buffer.from(signature).toString('base64url') });
        this.sealedSeq = Math.max(this.sealedSeq, head.seq);
        this.retryMs = this.delayMs;
      } catch (err) {
        this.onError(err);
        this.retryMs = Math.min(this.retryMs * 2, MAX_CHECKPOINT_RETRY_MS);
        if (retry) this.schedule(this.retryMs);
      }
    });
    // The next checkpoint waits for this one, whatever became of it.
    this.sealing = run.catch(() => undefined);
    return run;
  }
}

/** Audit events on JetStream: subject `aese.audit.v1.<service>.<chain>`, checkpoints below it. */
export class NatsAuditSink implements AuditSink {
  constructor(private readonly nc: NatsConnection) {}

  async write(event: AuditEvent): Promise<number> {
    const ack = await this.nc.jetstream().publish(`${AUDIT_SUBJECT_PREFIX}.${event.service}.${event.chain}`, Buffer.from(JSON.stringify(event)));
    return ack.seq;
  }

  async writeCheckpoint(checkpoint: AuditCheckpoint): Promise<void> {
    await this.nc.jetstream().publish(checkpointSubject(checkpoint.service, checkpoint.chain), Buffer.from(JSON.stringify(checkpoint)));
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
  for (const [chain, list] of byChain) for (const f of chainFaults(list)) breaks.push({ chain, seq: f.seq, problem: f.problem });
  return { chains: byChain.size, events: events.length, breaks };
}

/**
 * One fault in a chain's own links. `seq` is the event at fault; for MISSING (and MALFORMED) the
 * first event expected there, with `through` the last one missing; for OUT_OF_ORDER, `after` is
 * the event it came after.
 */
export interface ChainFault {
  readonly problem: AuditBreak['problem'];
  readonly seq: number;
  readonly through?: number;
  readonly after?: number;
}

/** Walks one chain's events in stream order: sequence without gaps, each hash right and linked. */
export function chainFaults(list: readonly AuditEvent[]): ChainFault[] {
  const faults: ChainFault[] = [];
  let prev = GENESIS;
  let expected = 1;
  for (const e of list) {
    if (typeof e.seq !== 'number' || typeof e.hash !== 'string') {
      faults.push({ problem: 'MALFORMED', seq: expected });
      continue;
    }
    const gap = e.seq !== expected;
    if (e.seq < expected) faults.push({ problem: 'OUT_OF_ORDER', seq: e.seq, after: expected - 1 });
    else if (e.seq > expected) faults.push({ problem: 'MISSING', seq: expected, through: e.seq - 1 });
    const { hash, ...rest } = e;
    // After a gap the link to the previous hash is broken by the gap itself; the event's own
    // hash still tells whether it was altered.
    if (auditHash(rest) !== hash || (!gap && e.prevHash !== prev)) faults.push({ problem: 'ALTERED', seq: e.seq });
    prev = hash;
    expected = e.seq + 1;
  }
  return faults;
}

/** One message of the audit stream as read: its position, server timestamp and parsed body. */
export interface AuditStreamMessage {
  readonly position: number;
  /** Set by the NATS server on append, not by the writer. */
  readonly storedAtMs: number;
  readonly subject: string;
  /** Undefined when the body is not JSON. */
  readonly body: unknown;
}

/** The audit stream's messages and its state (last_seq never goes down when messages are deleted). */
export interface AuditStreamContents {
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly messages: readonly AuditStreamMessage[];
}

/** Reads every message of the audit stream (events and checkpoints), in stream order. */
export async function readAuditStream(nc: NatsConnection, limit = 1_000_000): Promise<AuditStreamContents> {
  const jsm = await nc.jetstreamManager();
  const info = await jsm.streams.info(AUDIT_STREAM);
  const out: AuditStreamMessage[] = [];
  const contents = { firstSeq: info.state.first_seq, lastSeq: info.state.last_seq, messages: out };
  if (info.state.messages === 0) return contents;
  const consumer = await nc.jetstream().consumers.get(AUDIT_STREAM);
  const messages = await consumer.fetch({ max_messages: Math.min(limit, info.state.messages), expires: 2000 });
  for await (const m of messages) {
    let body: unknown;
    try {
      body = JSON.parse(Buffer.from(m.data).toString('utf8'));
    } catch {
      body = undefined;
    }
    out.push({ position: m.seq, storedAtMs: Math.floor(m.info.timestampNanos / 1e6), subject: m.subject, body });
    if (m.seq >= info.state.last_seq || out.length >= limit) break;
  }
  return contents;
}

/** Whether a stream message is a checkpoint (by its shape; its signature is checked elsewhere). */
export function isCheckpoint(body: unknown): boolean {
  return typeof body === 'object' && body !== null && (body as { kind?: unknown }).kind === 'checkpoint';
}

/** Reads every audit event currently in the stream, in stream order (checkpoints left out). */
export async function readAuditTrail(nc: NatsConnection, limit = 1_000_000): Promise<AuditEvent[]> {
  const { messages } = await readAuditStream(nc, limit);
  return messages.filter(m => !isCheckpoint(m.body)).map(m => (m.body === undefined ? ({ chain: 'malformed', seq: Number.NaN } as unknown as AuditEvent) : (m.body as AuditEvent)));
}
