import { expect } from 'chai';
import type { JsonBody, T8ApiJourney } from '../support/t8-api-journey.ts';
import { listSchema } from '../support/t8-api-journey.ts';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Midnight (UTC) two days ahead: the desired window spans that night and the next. */
const firstNight = (): number => Math.floor(Date.now() / DAY) * DAY + 2 * DAY;
const iso = (ms: number): string => new Date(ms).toISOString();

/** 1,000 UEs x 3 GB: one night's off-peak hours carry one such transfer, not two. */
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
 * the simulated PCRF offers each night's off-peak hours, the AS selects the first night. A second
 * agreement negotiated at the same time and selecting the same night overloads it, and the PCRF
 * warns with an ExNotification naming the journey's BDT reference and the overloaded window.
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
      const select = async (path: string, selectedPolicy: number): Promise<void> => {
        const reply = await calls.call({ method: 'PATCH', path, body: { selectedPolicy }, contentType: 'application/merge-patch+json' });
        expect(reply.status, reply.text).to.equal(200);
      };
      // Both negotiate while a night is free, then both select it.
      const { self: _self, selectedPolicy: _selected, ...request } = agreement;
      const unselected = await calls.call({ method: 'PUT', path: calls.itemPath, body: request });
      expect(unselected.status, unselected.text).to.equal(200);
      const offered = await calls.call({ method: 'POST', path: calls.itemPath.replace(/\/[^/]+$/, ''), body: heavy(String(agreement['notificationDestination'])) });
      expect(offered.status, offered.text).to.equal(201);
      const other = offered.json<JsonBody>();
      const night = (other['transferPolicies'] as JsonBody[])[0];
      const same = (agreement['transferPolicies'] as JsonBody[]).find(p => JSON.stringify(p['timeWindow']) === JSON.stringify(night['timeWindow']));
      expect(same, 'the journey agreement is offered the same night').not.to.equal(undefined);
      await select(new URL(other['self'] as string).pathname, night['bdtPolicyId'] as number);
      await select(calls.itemPath, same!['bdtPolicyId'] as number);
    },
    matches: (n, agreement) => n['bdtRefId'] === agreement['referenceId'] && typeof n['timeWindow'] === 'object',
  },
};
