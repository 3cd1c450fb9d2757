import { expect } from 'chai';
import type { JsonBody, T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Midnight (UTC) two days ahead: the desired window spans that night and the next. */
const firstNight = (): number => Math.floor(Date.now() / DAY) * DAY + 2 * DAY;
const iso = (ms: number): string => new Date(ms).toISOString();

/** 1,000 UEs x 3 GB take two thirds of one night's off-peak capacity; the operator warns past four fifths. */
function heavy(notificationDestination: string, numberOfUEs = 1000): JsonBody {
  const night = firstNight();
  return {
    volumePerUE: { totalVolume: 3_000_000_000 },
    numberOfUEs,
    desiredTimeWindow: { startTime: iso(night), stopTime: iso(night + DAY + 8 * HOUR) },
    notificationDestination,
    warnNotifEnabled: true,
  };
}

/**
 * 3gpp-bdt: a background data transfer for a number of UEs (it names none, so `ue` is not used);
 * the simulated PCRF offers each night's off-peak hours, the AS selects the first night (900 UEs:
 * three fifths of its capacity). A second agreement that still fits there loads the night past
 * the operator's performance criterion, and the PCRF warns with an ExNotification naming the
 * journey's BDT reference and the degraded window.
 */
export const bdtJourney: T8ApiJourney = {
  api: '3gpp-bdt',
  version: 'v1',
  schemaFile: 'resource-management-of-bdt',
  collection: 'subscriptions',
  categories: ['bdt'],
  target: 'none',
  create: (_ue, notificationDestination) => heavy(notificationDestination),
  schemas: { request: 'Bdt', resource: 'Bdt', list: listSchema('subscriptions') },
  put: { status: 200, body: (_ue, notificationDestination) => heavy(notificationDestination, 900) },
  patch: { contentType: 'application/merge-patch+json', schema: 'BdtPatch', status: 200, body: { selectedPolicy: 1 }, expect: { selectedPolicy: 1 } },
  notification: {
    schema: 'ExNotification',
    provoke: async (agreement, calls) => {
      const selected = (agreement['transferPolicies'] as JsonBody[]).find(p => p['bdtPolicyId'] === agreement['selectedPolicy']);
      expect(selected, 'the journey agreement has selected a night').not.to.equal(undefined);
      // 400 UEs more: 87 % of the night agreed, which it still carries, past the 80 % criterion.
      const offered = await calls.call({ method: 'POST', path: calls.itemPath.replace(/\/[^/]+$/, ''), body: heavy(String(agreement['notificationDestination']), 400) });
      expect(offered.status, offered.text).to.equal(201);
      const other = offered.json<JsonBody>();
      const same = (other['transferPolicies'] as JsonBody[]).find(p => JSON.stringify(p['timeWindow']) === JSON.stringify(selected!['timeWindow']));
      expect(same, 'the second agreement is offered the same night').not.to.equal(undefined);
      const path = new URL(other['self'] as string).pathname;
      const reply = await calls.call({ method: 'PATCH', path, body: { selectedPolicy: same!['bdtPolicyId'] }, contentType: 'application/merge-patch+json' });
      expect(reply.status, reply.text).to.equal(200);
    },
    matches: (n, agreement) => n['bdtRefId'] === agreement['referenceId'] && typeof n['timeWindow'] === 'object',
  },
};
