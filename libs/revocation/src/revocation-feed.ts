import { CONTROL_SUBJECTS, ControlConsumer } from '@aese/events';
import type { AuditLog, EventVerifier } from '@aese/events';
import type { Logger } from '@aese/logger';
import type { NatsConnection } from '@aese/nats';
import { decodeRevocation } from './revocation-events.js';
import { RevocationList } from './revocation-list.js';
import type { Revocation } from './revocation-list.js';

export interface RevocationFeedOptions {
  readonly nc: NatsConnection;
  readonly verifier: EventVerifier;
  readonly logger: Logger;
  readonly audit: AuditLog;
  /** Called after a verified revocation was added to the list (to drop caches, close connections). */
  readonly onRevoked?: (r: Revocation) => void;
}

/**
 * Follows the signed revocation stream into a {@link RevocationList}. Start it (which replays
 * every earlier revocation) before serving; forged and replayed events are logged and audited.
 */
export function followRevocations(options: RevocationFeedOptions): { list: RevocationList; consumer: ControlConsumer } {
  const list = new RevocationList();
  const consumer = new ControlConsumer(options.nc, {
    subject: CONTROL_SUBJECTS.revocations,
    verifier: options.verifier,
    apply: e => {
      const r = decodeRevocation(e.payload);
      if (!r) return;
      list.apply(r);
      options.onRevoked?.(r);
    },
    onRejected: (reason, e) => {
      options.logger.warn({ reason, version: e.version, kid: e.kid }, 'control event ignored');
      options.audit.record({ actor: 'unknown', action: 'control.revocation', decision: 'deny', reason, detail: { version: e.version } });
    },
  });
  return { list, consumer };
}
