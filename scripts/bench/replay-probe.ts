/**
 * Replay probes for `npm run bench`: a signed T8 GET sent once (must be served) and then again,
 * byte for byte (same headers, signature and nonce), which the edge must refuse as a replay.
 * Used by load-runner.ts during the measured secure load and by secure-path.ts across two edges.
 */
import { randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { Agent, request as httpsRequest } from 'node:https';
import { signMessage } from '@aese/http-signatures';
import type { SignatureAlgorithm } from '@aese/http-signatures';

/** ProblemDetails `cause` of a replayed request (services/edge/src/domain/t8-denials.ts, REPLAYED_REQUEST). */
export const REPLAYED_CAUSE = 'REPLAYED_REQUEST';
/** A probe request that takes longer than this counts as `other`. */
const PROBE_TIMEOUT_MS = 10_000;

export interface ProbeSigning {
  readonly token: string;
  readonly kid: string;
  readonly alg: SignatureAlgorithm;
  readonly key: KeyObject;
}

export interface ProbeTls {
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
}

/** Counts of replayed probes by how the edge answered the replay. */
export interface ReplayCounts {
  /** Probes started (each one fresh request and, once served, its replay). */
  sent: number;
  /** Replays refused with 401 and cause REPLAYED_REQUEST. */
  refused: number;
  /** Replays served (2xx): the replay guard let one through. */
  accepted: number;
  /** Anything else: the fresh request not served, another status or cause, a network error. */
  other: number;
  /** The first `other` answer, to say what went wrong. */
  firstUnexpected?: string;
}

export const noCounts = (): ReplayCounts => ({ sent: 0, refused: 0, accepted: 0, other: 0 });

/**
 * The headers of a signed T8 GET, as an AS signs it: a fresh nonce and `created`, covering
 * `@method`, `@target-uri` (https://<authority><path>) and `authorization`. `host` is the authority.
 */
export function signedGet(authority: string, path: string, s: ProbeSigning): Record<string, string> {
  const headers: Record<string, string> = { host: authority, authorization: `Bearer ${s.token}` };
  const signed = signMessage(
    { method: 'GET', targetUri: `https://${authority}${path}`, authority, headers },
    {
      label: 'sig1',
      components: ['@method', '@target-uri', 'authorization'],
      params: { created: Math.floor(Date.now() / 1000), nonce: randomBytes(16).toString('base64url'), keyid: s.kid },
      key: s.key,
      alg: s.alg,
    },
  );
  return { ...headers, 'signature-input': signed.signatureInput, signature: signed.signature };
}

/** A keep-alive TLS connection of its own to one edge, with the AS certificate; the server certificate is verified. */
export function probeAgent(): Agent {
  return new Agent({ keepAlive: true, maxSockets: 1 });
}

export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** Sends one GET with exactly these headers to 127.0.0.1:port (SNI `localhost`). */
export function sendGet(port: number, tls: ProbeTls, agent: Agent, path: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { host: '127.0.0.1', port, servername: 'localhost', ca: tls.caPem, cert: tls.certPem, key: tls.keyPem, method: 'GET', path, headers, agent, timeout: PROBE_TIMEOUT_MS },
      res => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The ProblemDetails `cause` of an answer, if it has one. */
export function causeOf(answer: Answer): string | undefined {
  try {
    const body = JSON.parse(answer.body) as { cause?: unknown; status?: unknown };
    return typeof body.cause === 'string' && body.status === answer.status ? body.cause : undefined;
  } catch {
    return undefined;
  }
}

/** True for the edge's replay refusal: 401 with a ProblemDetails whose status is 401 and cause REPLAYED_REQUEST. */
export const isReplayRefusal = (answer: Answer): boolean => answer.status === 401 && causeOf(answer) === REPLAYED_CAUSE;

const describe = (what: string, a: Answer): string => `${what}: ${a.status} ${a.body.slice(0, 200)}`;

/**
 * One probe: `fresh` (the signed request, sent to its first edge) must be served (200); then
 * `replay` (the very same headers, to the same or another edge) must be refused as a replay.
 */
export async function probeOnce(counts: ReplayCounts, fresh: () => Promise<Answer>, replay: () => Promise<Answer>): Promise<void> {
  counts.sent++;
  const other = (why: string): void => {
    counts.other++;
    counts.firstUnexpected ??= why;
  };
  try {
    const first = await fresh();
    if (first.status !== 200) return other(describe('fresh request', first));
    const again = await replay();
    if (isReplayRefusal(again)) counts.refused++;
    else if (again.status >= 200 && again.status < 300) counts.accepted++;
    else other(describe('replay', again));
  } catch (err) {
    other(`probe failed: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/**
 * Probes every `intervalMs`, at most `max` times, one at a time (a tick while a probe is in
 * flight is skipped), until stopped; `stop` waits for the probe in flight and returns the counts.
 */
export function startReplayProber(options: { intervalMs: number; max: number; probe: (counts: ReplayCounts) => Promise<void> }): { stop: () => Promise<ReplayCounts> } {
  const counts = noCounts();
  let inFlight: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (inFlight || counts.sent >= options.max) return;
    inFlight = options.probe(counts).finally(() => (inFlight = undefined));
  }, options.intervalMs);
  return {
    stop: async () => {
      clearInterval(timer);
      await inFlight;
      return counts;
    },
  };
}
