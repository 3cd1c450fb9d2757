import type { T8ApiJourney } from '../support/t8-api-journey.ts';
import { asSessionWithQosJourney } from './as-session-with-qos.ts';
import { bdtJourney } from './bdt.ts';
import { chargeablePartyJourney } from './chargeable-party.ts';
import { cpProvisioningJourney } from './cp-provisioning.ts';
import { deviceTriggeringJourney } from './device-triggering.ts';
import { ecrControlJourney } from './ecr-control.ts';
import { gmdViaMbmsByMb2Journey } from './gmd-via-mbms-by-mb2.ts';
import { gmdViaMbmsByXmbJourney } from './gmd-via-mbms-by-xmb.ts';
import { monitoringEventJourney } from './monitoring-event.ts';
import { msisdnLessMoSmsJourney } from './msisdn-less-mo-sms.ts';
import { niddJourney } from './nidd.ts';
import { npConfigurationJourney } from './np-configuration.ts';
import { pfdManagementJourney } from './pfd-management.ts';
import { racsParameterProvisioningJourney } from './racs-parameter-provisioning.ts';
import { reportingNetworkStatusJourney } from './reporting-network-status.ts';

/** Every T8 API the SCEF serves, each walked through the edge by test/t8-api-journeys.test.ts. */
export const T8_API_JOURNEYS: readonly T8ApiJourney[] = [
  monitoringEventJourney,
  asSessionWithQosJourney,
  chargeablePartyJourney,
  niddJourney,
  reportingNetworkStatusJourney,
  npConfigurationJourney,
  deviceTriggeringJourney,
  gmdViaMbmsByMb2Journey,
  gmdViaMbmsByXmbJourney,
  bdtJourney,
  pfdManagementJourney,
  cpProvisioningJourney,
  racsParameterProvisioningJourney,
  ecrControlJourney,
  msisdnLessMoSmsJourney,
];
