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
] as const;

export type T8Api = (typeof T8_APIS)[number];

/** The OAuth scopes an AS can be granted: one per T8 API. */
export const T8_SCOPES: readonly string[] = T8_APIS;

/** True for a known T8 scope. */
export function isT8Scope(value: string): value is T8Api {
  return (T8_APIS as readonly string[]).includes(value);
}

export { SEGMENT_MAX_CHARS, matchRoute, splitT8Target } from './routes.js';
export type { RouteMatch, RouteTemplate } from './routes.js';
