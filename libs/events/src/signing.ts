import { createPublicKey, verify } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { AeseError } from '@aese/errors';
import { KeyPurpose } from '@aese/protos/common/v1';
import type { PublicKey } from '@aese/protos/crypto/v1';

/** Signs control events; in the mesh this is the crypto service with an event-signing key. */
export interface EventSigner {
  sign(data: Uint8Array): Promise<{ kid: string; signature: Uint8Array }>;
}

/**
 * Verifies control-event signatures. `verify` resolves false only for a signature that is
 * definitely bad (or a kid definitely unknown); it throws an `AeseError` with code `UNAVAILABLE`
 * when the keys cannot be fetched: retry later, not a forgery.
 */
export interface EventVerifier {
  verify(kid: string, data: Uint8Array, signature: Uint8Array): Promise<boolean>;
}

/** The exact bytes an event signature covers: the subject, type and version bind the payload. */
export function signedBytes(subject: string, type: string, version: number, payload: Uint8Array): Uint8Array {
  const head = Buffer.from(`aese-control-event/v1\n${subject}\n${type}\n${version}\n`, 'utf8');
  return Buffer.concat([head, payload]);
}

/**
 * An unknown kid refreshes the key set at most once per this interval. It is also the longest an
 * event with an unknown (forged, or just rotated) kid waits for its verdict: short, because
 * consumers verify in order, and a GetJwks answer is cheap.
 */
export const EVENT_KEY_REFRESH_COOLDOWN_MS = 500;
/** After a failed fetch (crypto not up, say), the next one may start this soon: it costs crypto nothing. */
export const EVENT_KEY_RETRY_AFTER_FAILURE_MS = 250;

type CachedKey = { alg: string; key: KeyObject };

/** Pauses while the key custodian cannot be reached: they double from the first to the last. */
export const KEY_WAIT_BACKOFF_MS = { first: 100, max: 2_000 } as const;

/** True for the verifier's "keys cannot be fetched": no verdict, ask again later. */
export function isKeysUnavailable(err: unknown): err is AeseError {
  return err instanceof AeseError && err.code === 'UNAVAILABLE';
}

/**
 * Runs `attempt` (a signature check) until it gives a verdict. A verifier's UNAVAILABLE is no
 * verdict: it waits with backoff, telling `onWait` each time (with how many waits so far), and
 * asks again; the one way every consumer of signed state waits out a late or lost crypto.
 * Resolves undefined when `stopped()` turns true; anything else thrown is thrown.
 */
export async function untilKeysAnswer<T>(
  attempt: () => Promise<T>,
  options: { readonly stopped: () => boolean; readonly onWait?: (err: AeseError, waits: number) => void },
): Promise<T | undefined> {
  for (let delay: number = KEY_WAIT_BACKOFF_MS.first, waits = 0; ; delay = Math.min(delay * 2, KEY_WAIT_BACKOFF_MS.max)) {
    if (options.stopped()) return undefined;
    try {
      return await attempt();
    } catch (err) {
      if (!isKeysUnavailable(err)) throw err;
      options.onWait?.(err, ++waits);
      await new Promise(resolve => setTimeout(resolve, delay).unref());
    }
  }
}

function keysUnavailable(cause?: unknown): AeseError {
  return new AeseError('UNAVAILABLE', 'event-signing keys cannot be fetched from the crypto service', cause === undefined ? undefined : { cause });
}

/**
 * Verifies with locally cached public keys (JWKs of the event-signing purpose), fetched from the
 * key custodian on an unknown kid at most once per cooldown: a flood of forged kids costs nothing.
 *
 * `verify` answers false only when the answer is certain: the signature is wrong for a known
 * key, or the kid is absent from a key set fetched successfully after the call began (so a key
 * published a moment ago is never refused on an older fetch). When the key set cannot be
 * fetched (crypto not up yet, unreachable) it throws an `AeseError` with code `UNAVAILABLE`:
 * callers retry later and raise no alarm. The last fetched set stays in use meanwhile.
 */
export class JwksEventVerifier implements EventVerifier {
  private keys = new Map<string, CachedKey>();
  /** How many fetches have started; a call needs one numbered above the count it saw. */
  private started = 0;
  /** The last finished fetch: its number, when it started, whether it succeeded. */
  private lastFetch = { seq: 0, atMs: Number.NEGATIVE_INFINITY, ok: false };
  private inFlight: { seq: number; done: Promise<boolean> } | undefined;

  constructor(
    private readonly fetchKeys: () => Promise<JWK[]>,
    private readonly now: () => number = Date.now,
  ) {}

  async verify(kid: string, data: Uint8Array, signature: Uint8Array): Promise<boolean> {
    let entry = this.keys.get(kid);
    if (!entry) {
      await this.refreshAfter(this.started, kid);
      entry = this.keys.get(kid);
    }
    if (!entry) return false;
    try {
      const digest = entry.alg === 'ES256' ? 'sha256' : null;
      return verify(digest, data, { key: entry.key, dsaEncoding: 'ieee-p1363' }, signature);
    } catch {
      return false;
    }
  }

  /**
   * Returns once a fetch numbered above `seen` (started after the call began) has succeeded;
   * fetches are shared by concurrent callers and start at most once per cooldown. Throws
   * UNAVAILABLE when that fetch fails, or when the last one failed inside the retry interval
   * (no queueing behind an outage).
   */
  private async refreshAfter(seen: number, kid?: string): Promise<void> {
    for (;;) {
      if (this.inFlight) {
        const { seq, done } = this.inFlight;
        const ok = await done;
        // A fetch already under way brought the key: no need to wait out the cooldown for another.
        if (ok && kid !== undefined && this.keys.has(kid)) return;
        if (seq <= seen) continue;
        if (ok) return;
        throw keysUnavailable();
      }
      if (this.lastFetch.seq > seen) {
        if (this.lastFetch.ok) return;
        throw keysUnavailable();
      }
      const cooldownMs = this.lastFetch.ok ? EVENT_KEY_REFRESH_COOLDOWN_MS : EVENT_KEY_RETRY_AFTER_FAILURE_MS;
      const waitMs = this.lastFetch.atMs + cooldownMs - this.now();
      if (waitMs > 0) {
        if (!this.lastFetch.ok) throw keysUnavailable();
        await new Promise(resolve => setTimeout(resolve, waitMs));
        continue;
      }
      const seq = ++this.started;
      const done = this.fetch(seq, this.now());
      this.inFlight = { seq, done };
      void done.finally(() => {
        if (this.inFlight?.done === done) this.inFlight = undefined;
      });
    }
  }

  /** One fetch of the key set; never throws (the outcome is kept in `lastFetch`). */
  private async fetch(seq: number, atMs: number): Promise<boolean> {
    try {
      const next = new Map<string, CachedKey>();
      for (const jwk of await this.fetchKeys()) {
        if (!jwk.kid || (jwk.alg !== 'ES256' && jwk.alg !== 'EdDSA')) continue;
        next.set(jwk.kid, { alg: jwk.alg, key: createPublicKey({ key: jwk as never, format: 'jwk' }) });
      }
      this.keys = next;
      this.lastFetch = { seq, atMs, ok: true };
      return true;
    } catch {
      this.lastFetch = { seq, atMs, ok: false };
      return false;
    }
  }
}

/**
 * The event-signing public keys in a crypto `GetJwks` answer: what control-event verifiers trust.
 * Crypto keeps every event-signing key in that answer, retired ones too, because registry
 * entries, policy versions and revocations signed with a retired key stay in force.
 */
export function eventSigningJwks(keys: readonly PublicKey[]): JWK[] {
  return keys.filter(k => k.purpose === KeyPurpose.KEY_PURPOSE_EVENT_SIGNING).map(k => JSON.parse(k.jwkJson) as JWK);
}
