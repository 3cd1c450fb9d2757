import { connect, Events } from 'nats';
import type { KV, KvOptions, NatsConnection } from 'nats';
import { AeseError } from '@aese/errors';
import type { Logger } from '@aese/logger';

export type { KV, NatsConnection };

/** Where NATS is looked for when nothing is configured. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';
/** How long a first connection is tried before a service gives up at start-up. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

/** KV buckets; their names are part of the contract between services and operators. */
export const KV_BUCKETS = {
  applicationServers: 'aese_application_servers',
  certificateIndex: 'aese_certificate_index',
  signingKeys: 'aese_signing_keys',
  replayNonces: 'aese_replay_nonces',
  policies: 'aese_policies',
  subscriptions: 'aese_subscriptions',
} as const;

export interface NatsSettings {
  readonly servers: string | readonly string[];
  readonly name: string;
  readonly logger: Logger;
  readonly connectTimeoutMs?: number;
  /** Replicas of the streams and KV buckets this connection creates (3 on a NATS cluster). */
  readonly replicas?: number;
}

const replicasByConnection = new WeakMap<NatsConnection, number>();

/** The replica count streams and buckets created over this connection get. */
export function streamReplicas(nc: NatsConnection): number {
  return replicasByConnection.get(nc) ?? 1;
}

/**
 * Connects to NATS and keeps reconnecting forever after the first success; connection state
 * changes are logged. Fails with UNAVAILABLE when no server answers at start-up.
 */
export async function connectNats(settings: NatsSettings): Promise<NatsConnection> {
  let nc: NatsConnection;
  try {
    nc = await connect({
      servers: typeof settings.servers === 'string' ? settings.servers.split(',') : [...settings.servers],
      name: settings.name,
      timeout: settings.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
    });
  } catch (err) {
    throw new AeseError('UNAVAILABLE', `cannot connect to NATS at ${String(settings.servers)}`, { cause: err });
  }
  replicasByConnection.set(nc, settings.replicas ?? 1);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect || s.type === Events.Reconnect || s.type === Events.Error) {
        settings.logger.warn({ nats: s.type, server: String(s.data) }, 'nats connection state');
      }
    }
  })().catch(() => undefined);
  return nc;
}

/** Opens (creating if needed) a JetStream KV bucket. */
export async function openKv(nc: NatsConnection, bucket: string, options: Partial<KvOptions> = {}): Promise<KV> {
  try {
    return await retryJetStream(() => nc.jetstream().views.kv(bucket, { history: 1, replicas: streamReplicas(nc), ...options }));
  } catch (err) {
    throw new AeseError('UNAVAILABLE', `cannot open KV bucket ${bucket}`, { cause: err });
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Reads a JSON value from KV; undefined when the key is absent or deleted. */
export async function kvGetJson<T>(kv: KV, key: string): Promise<T | undefined> {
  const entry = await kv.get(key);
  if (!entry || entry.operation !== 'PUT' || entry.value.length === 0) return undefined;
  return JSON.parse(decoder.decode(entry.value)) as T;
}

/** Writes a JSON value to KV. */
export async function kvPutJson(kv: KV, key: string, value: unknown): Promise<void> {
  await kv.put(key, encoder.encode(JSON.stringify(value)));
}

/** Lists the keys of a bucket. */
export async function kvKeys(kv: KV): Promise<string[]> {
  const keys: string[] = [];
  for await (const key of await kv.keys()) keys.push(key);
  return keys;
}

/** Lists the live values of a bucket. */
export async function kvValuesJson<T>(kv: KV): Promise<T[]> {
  const out: T[] = [];
  // Collect the keys first: a get() while the keys() iterator runs ends the iteration early.
  for (const key of await kvKeys(kv)) {
    const v = await kvGetJson<T>(kv, key);
    if (v !== undefined) out.push(v);
  }
  return out;
}

/**
 * An in-memory copy of a KV bucket, kept current by a watch. Reads never wait on NATS, so a
 * service keeps answering from its last known state while NATS is unreachable; writes still go
 * to KV and fail when it cannot be reached.
 */
export class KvMirror<T> {
  private readonly values = new Map<string, T>();
  private stopWatch: (() => void) | undefined;
  private readonly listeners: ((key: string, value: T | undefined) => void)[] = [];

  /**
   * @param validate decides whether a value seen on the watch may replace the current one (a
   *   signature and version check, say); a refused value leaves the copy as it was.
   */
  constructor(
    readonly kv: KV,
    private readonly validate?: (key: string, value: T, previous: T | undefined) => Promise<boolean>,
  ) {}

  /** Loads every current value, then follows changes; resolves once the initial load is done. */
  async start(): Promise<void> {
    let initialized!: () => void;
    const ready = new Promise<void>(resolve => (initialized = resolve));
    const iter = await retryJetStream(() => this.kv.watch({ initializedFn: () => initialized() }));
    this.stopWatch = () => iter.stop();
    void (async () => {
      for await (const e of iter) {
        let value: T | undefined;
        try {
          value = e.operation === 'PUT' && e.value.length > 0 ? (JSON.parse(decoder.decode(e.value)) as T) : undefined;
        } catch {
          continue;
        }
        if (value !== undefined && this.validate && !(await this.validate(e.key, value, this.values.get(e.key)))) continue;
        if (value === undefined) this.values.delete(e.key);
        else this.values.set(e.key, value);
        for (const l of this.listeners) l(e.key, value);
      }
    })().catch(() => undefined);
    await ready;
  }

  get(key: string): T | undefined {
    return this.values.get(key);
  }

  entries(): [string, T][] {
    return [...this.values.entries()];
  }

  /** Writes through to KV and updates the copy at once (the watch confirms it later). */
  async put(key: string, value: T): Promise<void> {
    await kvPutJson(this.kv, key, value);
    this.values.set(key, value);
  }

  /** Called for every change seen on the watch. */
  onChange(listener: (key: string, value: T | undefined) => void): void {
    this.listeners.push(listener);
  }

  stop(): void {
    this.stopWatch?.();
  }
}

/** How long start-up JetStream calls are retried while a cluster elects new leaders. */
export const DEFAULT_JETSTREAM_RETRY_MS = 20_000;

/**
 * Runs a JetStream API call, retrying while the cluster cannot answer yet (a timeout or "no
 * responders" while a node is lost and leaders are re-elected). Used at start-up and for
 * consumer set-up, never on the request path.
 */
export async function retryJetStream<T>(fn: () => Promise<T>, timeoutMs = DEFAULT_JETSTREAM_RETRY_MS): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { code?: string }).code;
      const transient = code === 'TIMEOUT' || code === '503' || /no responders|timeout|leader/i.test(String((err as Error).message));
      if (!transient || Date.now() + delay > until) throw err;
      await new Promise(r => setTimeout(r, delay));
    }
  }
}
