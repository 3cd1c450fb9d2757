import { computeContentDigest, createNonce, signMessage } from '@aese/http-signatures';
import type { DestinationPolicy, SafeDestination } from '@aese/net-guard';
import { DestinationRefused, resolveSafeDestination } from '@aese/net-guard';
import type { SigningKey } from '../domain/delegated-signing-key.js';
import { ENCRYPT_RESPONSE_OBLIGATION, JOSE_MEDIA_TYPE, encryptBody } from '../domain/response-encryption.js';
import type { EncryptionJwk } from '../domain/application-server.js';

/** An obligation as authorization states it: a type and its parameters. */
export interface NotificationObligation {
  readonly type: string;
  readonly parameters: Readonly<Record<string, string>>;
}

/** The obligation that paces an AS's traffic; parameter `perSecond`, a decimal. */
export const RATE_LIMIT_OBLIGATION = 'rate-limit';
/** The highest rate a grant may state (services/authorization: `rateLimitPerSecond`). */
const MAX_PER_SECOND = 1_000_000;

/** What the obligations of one notification ask of the edge, or why they cannot be met. */
export type ObligationPlan =
  { readonly ok: true; readonly encrypt: boolean; readonly perSecond: number | undefined } | { readonly ok: false; readonly reason: 'UNKNOWN_OBLIGATION' | 'INVALID_OBLIGATION' };

/**
 * Reads the obligations of a notification: every one the authorization service can state is
 * carried out (encryption here, the rate limit by pacing); an unknown one, or a rate limit
 * without a usable `perSecond`, cannot be met and fails closed. Several rate limits: the lowest.
 */
export function planObligations(obligations: readonly NotificationObligation[]): ObligationPlan {
  let encrypt = false;
  let perSecond: number | undefined;
  for (const o of obligations) {
    if (o.type === ENCRYPT_RESPONSE_OBLIGATION) encrypt = true;
    else if (o.type === RATE_LIMIT_OBLIGATION) {
      const raw = o.parameters['perSecond'];
      const rate = raw === undefined || raw.trim() === '' ? NaN : Number(raw);
      if (!Number.isFinite(rate) || rate <= 0 || rate > MAX_PER_SECOND) return { ok: false, reason: 'INVALID_OBLIGATION' };
      perSecond = perSecond === undefined ? rate : Math.min(perSecond, rate);
    } else return { ok: false, reason: 'UNKNOWN_OBLIGATION' };
  }
  return { ok: true, encrypt, perSecond };
}

/** A notification as the edge delivers it, its obligations read ({@link planObligations}). */
export interface NotificationJob {
  readonly notificationId: string;
  readonly scsAsId: string;
  readonly destination: string;
  readonly body: Uint8Array;
  /** The body must go encrypted to the AS's key (encrypt-response). */
  readonly encrypt: boolean;
  /** 1 on the first attempt. */
  readonly attempt: number;
}

/** What one HTTPS POST needs; the transport is injected (a pinned-address HTTPS client). */
export interface OutboundRequest {
  readonly destination: SafeDestination;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

export interface DeliveryDeps {
  readonly destinations: DestinationPolicy;
  readonly signingKey: () => Promise<SigningKey>;
  /** The AS's registered encryption key, if any. */
  readonly encryptionKey: (scsAsId: string) => Promise<EncryptionJwk | undefined>;
  /** Sends the request; resolves with the HTTP status, rejects on a network failure. */
  readonly post: (request: OutboundRequest) => Promise<number>;
  readonly nowS?: () => number;
}

/**
 * What became of one attempt: delivered (2xx); retry later (network failure, 5xx, 408, 429); or
 * dropped for good with a stable reason (refused destination, obligation that cannot be met,
 * any other answer of the receiver: 3xx, 4xx).
 */
export type DeliveryOutcome =
  { readonly kind: 'delivered'; readonly status: number } | { readonly kind: 'retry'; readonly reason: string } | { readonly kind: 'drop'; readonly reason: string };

/**
 * Delivers one notification: re-checks the destination against the SSRF rules (DNS may have
 * changed since the subscription was written) and connects to the vetted address only; encrypts
 * it when obliged (never in clear without the AS's key); signs it with RFC 9421 (`created`, `nonce`,
 * `keyid` of the SCEF JWKS) so the AS can check origin and reject replays; and POSTs it.
 */
export async function deliverNotification(job: NotificationJob, deps: DeliveryDeps): Promise<DeliveryOutcome> {
  let destination: SafeDestination;
  try {
    destination = await resolveSafeDestination(job.destination, deps.destinations);
  } catch (err) {
    if (err instanceof DestinationRefused) return { kind: 'drop', reason: 'DESTINATION_REFUSED' };
    return { kind: 'retry', reason: 'DESTINATION_UNRESOLVED' };
  }
  let body = job.body;
  let contentType = 'application/json';
  if (job.encrypt) {
    const key = await deps.encryptionKey(job.scsAsId);
    // Fail closed: a notification that must be encrypted is never sent in clear.
    if (!key) return { kind: 'drop', reason: 'NO_ENCRYPTION_KEY' };
    body = await encryptBody(body, contentType, key);
    contentType = JOSE_MEDIA_TYPE;
  }
  const key = await deps.signingKey();
  const nowS = deps.nowS?.() ?? Math.floor(Date.now() / 1000);
  const headers: Record<string, string> = {
    'content-type': contentType,
    'content-digest': computeContentDigest(body, 'sha-256'),
  };
  const signed = signMessage(
    { method: 'POST', targetUri: destination.url.href, headers },
    {
      label: 'sig1',
      components: ['@method', '@target-uri', 'content-digest', 'content-type'],
      params: { created: nowS, nonce: createNonce(), keyid: key.kid, alg: key.alg },
      key: key.key,
      alg: key.alg,
    },
  );
  headers['signature-input'] = signed.signatureInput;
  headers['signature'] = signed.signature;
  let status: number;
  try {
    status = await deps.post({ destination, headers, body });
  } catch {
    return { kind: 'retry', reason: 'NETWORK_ERROR' };
  }
  if (status >= 200 && status < 300) return { kind: 'delivered', status };
  if (status >= 500 || status === 408 || status === 429) return { kind: 'retry', reason: `HTTP_${status}` };
  return { kind: 'drop', reason: `HTTP_${status}` };
}
