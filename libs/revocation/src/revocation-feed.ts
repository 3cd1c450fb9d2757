import { CONTROL_SUBJECTS, ControlConsumer, ensureTokenRevocationStream, TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT, TOKEN_REVOCATIONS_SUBJECT } from '@aese/events';
import type { AuditLog, ControlFeed, ControlFeedStatus, ControlPublisher, ControlSubject, EventVerifier } from '@aese/events';
import type { Logger } from '@aese/logger';
import type { NatsConnection } from '@aese/nats';
import { decodeRevocationEvent, decodeTokenSnapshot, DEFAULT_TOKEN_REVOCATION_RETENTION_S, encodeTokenSnapshot, REVOCATION_SNAPSHOT_TYPE } from './revocation-events.js';
import { RevocationList } from './revocation-list.js';
import type { Revocation } from './revocation-list.js';

/** A token-revocation snapshot is written after this many token revocations since the last one. */
export const TOKEN_SNAPSHOT_EVERY = 1_000;
/** Above this many live token revocations no snapshot is written (it would not fit a NATS message); start-up replays. */
export const MAX_SNAPSHOT_TOKENS = 16_000;

export interface RevocationFeedOptions {
  readonly nc: NatsConnection;
  readonly verifier: EventVerifier;
  readonly logger: Logger;
  readonly audit: AuditLog;
  /** Retention of the token-revocation stream (its max age); the same in every service. */
  readonly tokenRetentionS?: number;
  /**
   * Called after a verified revocation was added to the list (to drop caches, close connections),
   * with the time its publisher revoked (ms since the epoch) and whether the feed had caught up
   * (false while it replays earlier events at start-up).
   */
  readonly onRevoked?: (r: Revocation, revokedAtMs: number, live: boolean) => void;
  /**
   * The revocation publisher (authentication): it also writes signed snapshots of the token
   * revocations in force every {@link TOKEN_SNAPSHOT_EVERY} of them, so that a start replays a
   * snapshot and a short tail instead of the whole retention window.
   */
  readonly snapshotPublisher?: ControlPublisher;
  /** Snapshot interval (token revocations); tests use a small one. */
  readonly snapshotEvery?: number;
}

/** How bad each status is (lower is worse); a Record, so a new status cannot be left unranked. */
const SEVERITY: Readonly<Record<ControlFeedStatus, number>> = { tampered: 0, failed: 1, 'waiting-for-keys': 2, starting: 3, stopped: 4, current: 5 };

/** The worst status of several feeds: `current` only when every one is. */
function combined(statuses: readonly ControlFeedStatus[]): ControlFeedStatus {
  return statuses.reduce<ControlFeedStatus>((worst, s) => (SEVERITY[s] < SEVERITY[worst] ? s : worst), 'current');
}

/**
 * Follows both revocation feeds: the permanent one (AS and certificate revocations, in the
 * control stream) and the token one (its own stream, with a retention), as one feed.
 */
class RevocationFeed implements ControlFeed {
  constructor(
    private readonly nc: NatsConnection,
    private readonly retentionMs: number,
    private readonly feeds: readonly ControlConsumer[],
  ) {}

  async start(): Promise<void> {
    await ensureTokenRevocationStream(this.nc, this.retentionMs);
    await Promise.all(this.feeds.map(f => f.start()));
  }

  stop(): void {
    for (const f of this.feeds) f.stop();
  }

  async resync(timeoutMs?: number): Promise<void> {
    await Promise.all(this.feeds.map(f => f.resync(timeoutMs)));
  }

  get status(): ControlFeedStatus {
    return combined(this.feeds.map(f => f.status));
  }

  onStatus(listener: (status: ControlFeedStatus) => void): void {
    for (const f of this.feeds) f.onStatus(() => listener(this.status));
  }
}

/**
 * Follows the signed revocation streams into a {@link RevocationList}. Start it (which replays
 * every earlier revocation still in force) before serving; forged and replayed events are logged
 * and audited, a missing one makes the feed `tampered`.
 */
export function followRevocations(options: RevocationFeedOptions): { list: RevocationList; consumer: ControlFeed } {
  const list = new RevocationList();
  const retentionMs = (options.tokenRetentionS ?? DEFAULT_TOKEN_REVOCATION_RETENTION_S) * 1000;
  const every = options.snapshotEvery ?? TOKEN_SNAPSHOT_EVERY;
  let sinceSnapshot = 0;
  let writing = false;
  const feed = (subject: ControlSubject, retention?: number): ControlConsumer =>
    new ControlConsumer(options.nc, {
      subject,
      verifier: options.verifier,
      logger: options.logger,
      audit: options.audit,
      ...(retention === undefined
        ? {}
        : {
            retentionMs: retention,
            snapshot: {
              subject: TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT,
              type: REVOCATION_SNAPSHOT_TYPE,
              load: (payload: Uint8Array, seq: number) => {
                const { tokens, coversThroughSeq } = decodeTokenSnapshot(payload);
                if (coversThroughSeq <= 0 || coversThroughSeq >= seq) return 0;
                for (const r of tokens) list.apply(r);
                return coversThroughSeq;
              },
            },
          }),
      apply: e => {
        const decoded = decodeRevocationEvent(e.payload);
        // A permanent revocation never rides the expiring stream: it would silently lapse.
        if (!decoded || (decoded.revocation.kind !== 'token' && subject === TOKEN_REVOCATIONS_SUBJECT)) return;
        const r = decoded.revocation;
        list.apply(r);
        options.onRevoked?.(r, decoded.revokedAtMs, (subject === TOKEN_REVOCATIONS_SUBJECT ? tokens : permanent).status === 'current');
        if (subject === TOKEN_REVOCATIONS_SUBJECT && ++sinceSnapshot >= every) setImmediate(writeSnapshot);
      },
      onRejected: (reason, e) => {
        options.logger.warn({ reason, version: e.version, kid: e.kid, subject }, 'control event ignored');
        options.audit.record({ actor: 'unknown', action: 'control.revocation', decision: 'deny', reason, detail: { version: e.version } });
      },
    });
  const permanent = feed(CONTROL_SUBJECTS.revocations);
  const tokens = feed(TOKEN_REVOCATIONS_SUBJECT, retentionMs);
  // The snapshot stands for the stream up to the position the consumer has processed (read in
  // the same turn as the list, so the list holds at least everything up to there).
  const writeSnapshot = (): void => {
    const publisher = options.snapshotPublisher;
    if (!publisher || writing || sinceSnapshot < every || tokens.status !== 'current' || tokens.processedSequence === 0) return;
    sinceSnapshot = 0;
    const live = list.liveTokens();
    // Too many to fit one message: starts replay the (retention-bounded) stream; look again later.
    if (live.length > MAX_SNAPSHOT_TOKENS) return;
    writing = true;
    const payload = encodeTokenSnapshot(live, tokens.processedSequence);
    void publisher
      .publish(TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT, REVOCATION_SNAPSHOT_TYPE, payload)
      .then(version => options.logger.debug({ version, tokens: live.length }, 'token revocation snapshot written'))
      .catch((err: unknown) => options.logger.warn({ err }, 'token revocation snapshot not written'))
      .finally(() => (writing = false));
  };
  const consumer = new RevocationFeed(options.nc, retentionMs, [permanent, tokens]);
  return { list, consumer };
}
