import { computeContentDigest, createNonce, signMessage } from '@aese/http-signatures';
import type { DestinationPolicy, SafeDestination } from '@aese/net-guard';
import { DestinationRefused, resolveSafeDestination } from '@aese/net-guard';
import type { SigningKey } from '../domain/delegated-signing-key.js';
import { ENCRYPT_RESPONSE_OBLIGATION, JOSE_MEDIA_TYPE, encryptBody } from '../domain/response-encryption.js';
import type { EncryptionJwk } from '../domain/application-server.js';

/** A notification as the edge receives it from capability-exposure. */
export interface NotificationJob {
  readonly notificationId: string;
  readonly scsAsId: string;
  readonly destination: string;
  readonly body: Uint8Array;
  readonly obligations: readonly string[];
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
 * What became of one attempt: delivered; retry later (network failure, 5xx, 408, 429); or
 * dropped for good with a stable reason (refused destination, obligation that cannot be met,
 * a 4xx from the receiver).
 */
export type DeliveryOutcome =
  | { readonly kind: 'delivered'; readonly status: number }
  | { readonly kind: 'retry'; readonly reason: string }
  | { readonly kind: 'drop'; readonly reason: string };

const KNOWN_OBLIGATIONS = new Set([ENCRYPT_RESPONSE_OBLIGATION]);

/**
 * Delivers one notification: re-checks the destination against the SSRF rules (DNS may have
 * changed since the subscription was written) and connects to the vetted address only; carries
 * out its obligations (an unknown one fails closed); signs it with RFC 9421 (`created`, `nonce`,
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
  if (job.obligations.some(o => !KNOWN_OBLIGATIONS.has(o))) return { kind: 'drop', reason: 'UNKNOWN_OBLIGATION' };
  let body = job.body;
  let contentType = 'application/json';
  if (job.obligations.includes(ENCRYPT_RESPONSE_OBLIGATION)) {
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
