import { AeseError } from '@aese/errors';
import type { HandlersOf } from '@aese/grpc-server';
import type { Logger } from '@aese/logger';
import { Verdict as PbVerdict } from '@aese/protos/replay-guard/v1';
import type { ReplayGuardServiceService } from '@aese/protos/replay-guard/v1';
import type { ReplayGuard, Verdict } from '@aese/replay-window';

type Handlers = HandlersOf<typeof ReplayGuardServiceService>;

const VERDICT_TO_PB: Record<Verdict, PbVerdict> = {
  accepted: PbVerdict.VERDICT_ACCEPTED,
  replayed: PbVerdict.VERDICT_REPLAYED,
  stale: PbVerdict.VERDICT_STALE,
  future: PbVerdict.VERDICT_FUTURE,
};

/** Proto <-> domain for the replay guard. Refusals are logged with the AS, never the nonce. */
export function replayGuardHandlers(guard: ReplayGuard, logger: Logger): Handlers {
  return {
    checkAndRecord: async (req, ctx) => {
      let verdict: Verdict;
      try {
        verdict = await guard.check({ scsAsId: req.scsAsId, nonce: req.nonce, created: req.created }, ctx.signal);
      } catch (err) {
        // The store logs its own outages once; per-call lines would flood the log during one.
        if (err instanceof AeseError && err.code === 'UNAVAILABLE') {
          logger.debug({ err, scsAsId: req.scsAsId }, 'replay check undecided; failing closed');
        }
        throw err;
      }
      // A replay is rare and telling; stale and future are mostly clock skew. The edge audits both.
      if (verdict === 'replayed') logger.info({ scsAsId: req.scsAsId }, 'replayed nonce refused');
      else if (verdict !== 'accepted') logger.debug({ scsAsId: req.scsAsId, verdict }, 'request outside the freshness window');
      return { verdict: VERDICT_TO_PB[verdict] };
    },
  };
}
