/**
 * The T8 APIs of TS 29.122 by base path segment. Each is also the OAuth scope that grants it
 * (T8 security profile section 3), so the registry, the edge's metadata and the capability
 * modules all draw on this one list.
 */
export const T8_APIS = [
  '3gpp-monitoring-event',
  '3gpp-as-session-with-qos',
  '3gpp-device-triggering',
  '3gpp-nidd',
  '3gpp-bdt',
  '3gpp-chargeable-party',
  '3gpp-group-message-delivery-mb2',
  '3gpp-group-message-delivery-xmb',
  '3gpp-net-stat-report',
  '3gpp-cp-parameter-provisioning',
  '3gpp-pfd-management',
  '3gpp-ecr-control',
  '3gpp-network-parameter-configuration',
  '3gpp-racs-pp',
  '3gpp-msisdn-less-mo-sms',
] as const;

export type T8Api = (typeof T8_APIS)[number];

/**
 * The T8 APIs this SCEF serves: capability-exposure has a module for each (a test checks the two
 * agree). Scopes, onboarding, the token endpoint and the edge's metadata offer only these.
 */
export const SERVED_T8_APIS = [
  '3gpp-monitoring-event',
  '3gpp-as-session-with-qos',
  '3gpp-chargeable-party',
  '3gpp-group-message-delivery-mb2',
  '3gpp-group-message-delivery-xmb',
  '3gpp-nidd',
  '3gpp-net-stat-report',
  '3gpp-network-parameter-configuration',
  '3gpp-device-triggering',
  '3gpp-msisdn-less-mo-sms',
  '3gpp-bdt',
  '3gpp-ecr-control',
  '3gpp-pfd-management',
  '3gpp-cp-parameter-provisioning',
  '3gpp-racs-pp',
] as const satisfies readonly T8Api[];

/** The OAuth scopes an AS can be granted: one per served T8 API. */
export const T8_SCOPES: readonly string[] = SERVED_T8_APIS;

/** True for the scope of a served T8 API. */
export function isT8Scope(value: string): value is T8Api {
  return (SERVED_T8_APIS as readonly string[]).includes(value);
}

export { DEFAULT_LOCATION_GRANULARITY, LOCATION_GRANULARITIES, OPERATIONS } from './grant-vocabulary.js';
export type { LocationGranularity, Operation } from './grant-vocabulary.js';
export { identifierSyntaxError, MAX_TARGET_CHARS, MAX_TARGETS_PER_DECISION, TARGET_KINDS, targetOf, targetSyntaxError } from './identifiers.js';
export type { TargetKind } from './identifiers.js';
export { SEGMENT_MAX_CHARS, matchRoute, splitT8Target } from './routes.js';
export type { RouteMatch, RouteTemplate } from './routes.js';
