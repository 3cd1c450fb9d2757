import { CONTROL_SUBJECTS, ControlConsumer, Freshness } from '@aese/events';
import type { AuditLog, EventVerifier } from '@aese/events';
import type { Logger } from '@aese/logger';
import type { NatsConnection } from '@aese/nats';
import { ApplicationServerChanged } from '@aese/protos/events/v1';
import { followRevocations } from '@aese/revocation';
import type { ReadinessStep } from '@aese/runtime';
import { cacheLookups, RevocationLagMetrics } from '@aese/telemetry';
import type { Meter } from '@opentelemetry/api';
import { RegisteredKeyCache } from './domain/application-server.js';
import type { JwksCache } from './domain/jwks.js';
import { enforceRevocation, OpenConnections, RevocationAwareIdentities, RevocationAwareTokens } from './domain/revocation-enforcement.js';
import { TokenCache } from './domain/token-cache.js';
import type { MeshAdapters } from './mesh-adapters.js';

/** The settings the control state reads (EDGE_SETTINGS). */
export interface ControlFeedSettings {
  readonly tokenRevocationRetentionS: number;
  readonly tokenCacheSize: number;
  readonly stalenessBoundMs: number;
}

export interface ControlFeedsOptions {
  readonly nc: NatsConnection;
  readonly verifier: EventVerifier;
  readonly logger: Logger;
  readonly audit: AuditLog;
  readonly meter: Meter;
  readonly mesh: Pick<MeshAdapters, 'resolveClient' | 'verifyToken'>;
  /** The edge's copy of crypto's key set: a key rotation expires it. */
  readonly jwks: JwksCache;
  readonly config: ControlFeedSettings;
}

/** This edge's view of revocations, suspensions and key rotations, and what it decides with. */
export interface ControlFeeds {
  /** The AS of each connection, refused once revoked, and undecided (503) while the feeds are stale. */
  readonly identities: RevocationAwareIdentities;
  /** Token verifications that a revocation overrides at once. */
  readonly tokens: RevocationAwareTokens;
  /** Open client connections, closed when their certificate or AS is revoked or suspended. */
  readonly connections: OpenConnections;
  /** Readiness: each feed has applied everything published so far. */
  readonly readinessSteps: readonly ReadinessStep[];
  /** Starts tracking freshness, once ready; until then identities decide nothing. */
  startFreshness(): void;
  stop(): void;
}

/**
 * Revocations, suspensions and key rotations, as signed control events: this edge's own view of
 * them refuses revoked identities at once, on open connections too, and closes those.
 */
export function createControlFeeds(options: ControlFeedsOptions): ControlFeeds {
  const { nc, verifier, logger, audit, meter, mesh, jwks, config } = options;
  const connections = new OpenConnections();
  const registeredKeys = new RegisteredKeyCache();
  // Assigned once ready (startFreshness); read only when a request arrives.
  let freshness: Freshness | undefined;
  const revocationLag = new RevocationLagMetrics(meter);
  const { list: revocations, consumer: revocationFeed } = followRevocations({
    nc,
    verifier,
    logger,
    audit,
    tokenRetentionS: config.tokenRevocationRetentionS,
    onRevoked: (r, revokedAtMs, live) => {
      const closed = enforceRevocation(r, { connections, identities, tokens });
      // Replayed at start-up, a revocation's age is not a lag.
      if (live) revocationLag.enforced(r.kind, Date.now() - revokedAtMs);
      logger.info({ kind: r.kind, closed }, 'revocation enforced');
    },
  });
  const identities = new RevocationAwareIdentities(
    async certificateDer => {
      const as = await mesh.resolveClient(certificateDer, registeredKeys);
      connections.owner(as.thumbprint, as.scsAsId);
      return as;
    },
    revocations,
    // A tampered or blocked control feed decides nothing (503), like stale state.
    () => (freshness?.isFresh() ?? false) && feedsCurrent(),
  );
  const tokens = new RevocationAwareTokens(new TokenCache({ maxEntries: config.tokenCacheSize, lookups: cacheLookups(meter, 'edge.token') }), mesh.verifyToken, revocations);
  const controlRejected = (action: string) => (reason: string, e: { version: number; kid: string }) => {
    logger.warn({ reason, version: e.version, kid: e.kid }, 'control event ignored');
    audit.record({ actor: 'unknown', action, decision: 'deny', reason, detail: { version: e.version } });
  };
  const registryFeed = new ControlConsumer(nc, {
    subject: CONTROL_SUBJECTS.registry,
    verifier,
    logger,
    audit,
    apply: e => {
      // Any change (new keys, scopes, status) makes cached records and verifications stale.
      const change = ApplicationServerChanged.decode(e.payload);
      identities.invalidateAll();
      tokens.invalidateScsAsId(change.scsAsId);
      if (change.status !== 'active') logger.info({ closed: connections.closeAs(change.scsAsId) }, 'connections of a suspended AS closed');
    },
    onRejected: controlRejected('control.registry'),
  });
  const keyFeed = new ControlConsumer(nc, {
    subject: CONTROL_SUBJECTS.keys,
    verifier,
    logger,
    audit,
    apply: () => jwks.expire(),
    onRejected: controlRejected('control.keys'),
  });
  const feeds = [revocationFeed, registryFeed, keyFeed];
  const feedsCurrent = (): boolean => feeds.every(f => f.status === 'current');

  return {
    identities,
    tokens,
    connections,
    readinessSteps: [
      { what: 'the revocation feed', run: () => revocationFeed.start() },
      { what: 'the registry feed', run: () => registryFeed.start() },
      { what: 'the key feed', run: () => keyFeed.start() },
    ],
    startFreshness: () => {
      freshness = new Freshness(nc, feeds, config.stalenessBoundMs);
    },
    stop: () => {
      for (const f of feeds) f.stop();
    },
  };
}
