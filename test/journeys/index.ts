import type { T8ApiJourney } from '../support/t8-api-journey.ts';
import { asSessionWithQosJourney } from './as-session-with-qos.ts';
import { chargeablePartyJourney } from './chargeable-party.ts';
import { monitoringEventJourney } from './monitoring-event.ts';

/** Every T8 API the SCEF serves, each walked through the edge by test/t8-api-journeys.test.ts. */
export const T8_API_JOURNEYS: readonly T8ApiJourney[] = [monitoringEventJourney, asSessionWithQosJourney, chargeablePartyJourney];
