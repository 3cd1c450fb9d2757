import { connect, credsAuthenticator, Events } from 'nats';
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
  /** Which edge holds each AS's replay window (libs/replay-window): one key per AS under a lease (the bucket's TTL). */
  replayLeases: 'aese_replay_leases',
  policies: 'aese_policies',
  subscriptions: 'aese_subscriptions',
  /** The deployment's identity (its mesh CA): a stack started against another deployment's NATS says so. */
  deployment: 'aese_deployment',
  /** Which capability-exposure replica runs the simulated network: one key under a lease (the bucket's TTL). */
  networkOwner: 'aese_network_owner',
} as const;

export interface NatsSettings {
  readonly servers: string | readonly string[];
  readonly name: string;
  readonly logger: Logger;
  readonly connectTimeoutMs?: number;
  /** Replicas of the streams and KV buckets this connection creates (3 on a NATS cluster). */
  readonly replicas?: number;
  /**
   * TLS with a client certificate: NATS maps the certificate to this identity's permissions.
   * `caPem` verifies the server (the mesh CA, or the CA of an external NATS).
   */
  readonly tls?: { readonly caPem: string; readonly certPem: string; readonly keyPem: string };
  /** Replies and push deliveries arrive under this prefix, the only one the identity may read. */
  readonly inboxPrefix?: string;
  /** Contents of a NATS user credentials file (JWT + nkey seed), for an external NATS that uses them. */
  readonly credentials?: string;
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
      // Per-request operations would otherwise capture a stack trace each (a few us apiece).
      noAsyncTraces: true,
      ...(settings.tls ? { tls: { ca: settings.tls.caPem, cert: settings.tls.certPem, key: settings.tls.keyPem } } : {}),
      ...(settings.inboxPrefix ? { inboxPrefix: settings.inboxPrefix } : {}),
      ...(settings.credentials ? { authenticator: credsAuthenticator(new TextEncoder().encode(settings.credentials)) } : {}),
    });
  } catch (err) {
    const text = String((err as Error).message);
    if (/authorization violation|authentication/i.test(text)) {
      throw new AeseError(
        'FAILED_PRECONDITION',
        `NATS at ${String(settings.servers)} refused the identity ${settings.name}: its configuration was not made for this deployment's PKI (regenerate it: see docs/security-operations.md)`,
        { cause: err },
      );
    }
    if (/certificate|self.signed|unable to verify/i.test(text)) {
      throw new AeseError(
        'FAILED_PRECONDITION',
        `NATS at ${String(settings.servers)} presents a certificate this deployment's CA did not issue (${text}): it is another deployment's NATS, or an external one whose CA NATS_CA_FILE must name`,
        { cause: err },
      );
    }
    throw new AeseError('UNAVAILABLE', `cannot connect to NATS at ${String(settings.servers)}: ${text}`, { cause: err });
  }
  replicasByConnection.set(nc, settings.replicas ?? 1);
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === Events.Disconnect || s.type === Events.Reconnect || s.type === Events.Error) {
        settings.logger.warn({ nats: s.type, server: typeof s.data === 'string' ? s.data : JSON.stringify(s.data) }, 'nats connection state');
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

/** JetStream API error codes (nats-server `errors.json`) the services act on. */
export const JS_ERRORS = {
  /** An expected-last-(subject-)sequence check failed: someone else wrote first. */
  wrongLastSequence: 10071,
  streamNotFound: 10059,
  noMessageFound: 10037,
} as const;

/** The JetStream API error code an error carries, if any. */
export function jsErrorCode(err: unknown): number | undefined {
  return (err as { api_error?: { err_code?: number } } | null)?.api_error?.err_code;
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
