import { asSessionWithQosModule } from './as-session-with-qos/index.js';
import { bdtModule } from './bdt/index.js';
import { chargeablePartyModule } from './chargeable-party/index.js';
import { cpProvisioningModule } from './cp-provisioning/index.js';
import { deviceTriggeringModule } from './device-triggering/index.js';
import { ecrControlModule } from './ecr-control/index.js';
import { gmdViaMbmsByMb2Module } from './gmd-via-mbms-by-mb2/index.js';
import { gmdViaMbmsByXmbModule } from './gmd-via-mbms-by-xmb/index.js';
import { monitoringEventModule } from './monitoring-event/index.js';
import { msisdnLessMoSmsModule } from './msisdn-less-mo-sms/index.js';
import { niddModule } from './nidd/index.js';
import { npConfigurationModule } from './np-configuration/index.js';
import { pfdManagementModule } from './pfd-management/index.js';
import { racsParameterProvisioningModule } from './racs-parameter-provisioning/index.js';
import type { ModuleDefinition } from './registry.js';
import { reportingNetworkStatusModule } from './reporting-network-status/index.js';

/**
 * The T8 API modules this service serves. A new API is a new folder under modules/ and one line
 * here; neither the Invoke pipeline nor the edge changes.
 */
export const BUILTIN_MODULES: readonly ModuleDefinition[] = [
  monitoringEventModule,
  asSessionWithQosModule,
  chargeablePartyModule,
  gmdViaMbmsByMb2Module,
  gmdViaMbmsByXmbModule,
  niddModule,
  reportingNetworkStatusModule,
  npConfigurationModule,
  deviceTriggeringModule,
  msisdnLessMoSmsModule,
  bdtModule,
  ecrControlModule,
  pfdManagementModule,
  cpProvisioningModule,
  racsParameterProvisioningModule,
];
