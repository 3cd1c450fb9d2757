import { fileURLToPath } from 'node:url';

/**
 * Folder of the vendored 3GPP OpenAPI files (TS 29.122 Rel-18 and the files they reference),
 * byte-for-byte copies: `$ref`s name bare file names, so they must stay flat in one folder.
 */
export const OPENAPI_DIR = fileURLToPath(new URL('../openapi/', import.meta.url));

/**
 * The T8 API files this project loads, keyed by a short name. The key is also the name of the
 * generated types module (`src/gen/<key>.ts`).
 */
export const T8_API_FILES = {
  'monitoring-event': 'TS29122_MonitoringEvent.yaml',
  'as-session-with-qos': 'TS29122_AsSessionWithQoS.yaml',
  'device-triggering': 'TS29122_DeviceTriggering.yaml',
  nidd: 'TS29122_NIDD.yaml',
  'reporting-network-status': 'TS29122_ReportingNetworkStatus.yaml',
  'chargeable-party': 'TS29122_ChargeableParty.yaml',
  'resource-management-of-bdt': 'TS29122_ResourceManagementOfBdt.yaml',
  'pfd-management': 'TS29122_PfdManagement.yaml',
  'cp-provisioning': 'TS29122_CpProvisioning.yaml',
  'ecr-control': 'TS29122_ECRControl.yaml',
  'np-configuration': 'TS29122_NpConfiguration.yaml',
  'racs-parameter-provisioning': 'TS29122_RacsParameterProvisioning.yaml',
  'gmd-via-mbms-by-mb2': 'TS29122_GMDviaMBMSbyMB2.yaml',
  'gmd-via-mbms-by-xmb': 'TS29122_GMDviaMBMSbyxMB.yaml',
  'msisdn-less-mo-sms': 'TS29122_MsisdnLessMoSms.yaml',
  'common-data': 'TS29122_CommonData.yaml',
} as const;

/** Short name of a loaded T8 API file. */
export type T8ApiFile = keyof typeof T8_API_FILES;
