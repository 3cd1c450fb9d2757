import type { components } from '@aese/t8-openapi/nidd';
import { invalidParam, PROBLEM_CAUSES } from '../../domain/problem.js';

export const NIDD_API = '3gpp-nidd';
/** The one data category of NIDD: the non-IP data itself and its delivery. */
export const NIDD_CATEGORY = 'nidd';
/** Where the downlink data deliveries are stored (a sub-resource of a configuration). */
export const DELIVERY_STORE = '3gpp-nidd-downlink-data-deliveries';

/** ProblemDetails causes of this API, beside the shared ones (TS 29.122 clause 4.4.5.3). */
export const NIDD_CAUSES = {
  /** 403: the packet is larger than the configuration's maximumPacketSize. */
  dataTooLarge: 'DATA_TOO_LARGE',
  /** 403: an rdsPort that is not among the configuration's rdsPorts. */
  rdsPortUnknown: 'RDS_PORT_UNKNOWN',
  /** 500 (NiddDownlinkDataDeliveryFailure): the UE cannot be reached and the AS asked for no buffering. */
  temporarilyNotReachable: 'TEMPORARILY_NOT_REACHABLE',
} as const;

export type Configuration = components['schemas']['NiddConfiguration'];
export type Transfer = components['schemas']['NiddDownlinkDataTransfer'];
export type TransferPatch = components['schemas']['NiddDownlinkDataTransferPatch'];
export type UplinkNotification = components['schemas']['NiddUplinkDataNotification'];
export type DeliveryStatusNotification = components['schemas']['NiddDownlinkDataDeliveryStatusNotification'];
export type GroupDeliveryNotification = components['schemas']['GmdNiddDownlinkDataDeliveryNotification'];
export type ConfigurationStatusNotification = components['schemas']['NiddConfigurationStatusNotification'];
export type DeliveryFailure = components['schemas']['NiddDownlinkDataDeliveryFailure'];
export type GmdResult = components['schemas']['GmdResult'];
/** The statuses this SCEF writes (the schema also admits any other string). */
export type DeliveryStatus =
  'SUCCESS' | 'SUCCESS_ACKNOWLEDGED' | 'SUCCESS_NEXT_HOP_ACKNOWLEDGED' | 'TRIGGERED' | 'BUFFERING' | 'FAILURE' | 'FAILURE_TIMEOUT' | 'FAILURE_TEMPORARILY_NOT_REACHABLE';

const P = '#/paths/~1{scsAsId}~1configurations';
export const SCHEMAS = {
  configuration: 'NiddConfiguration',
  configurationPatch: 'NiddConfigurationPatch',
  transfer: 'NiddDownlinkDataTransfer',
  transferPatch: 'NiddDownlinkDataTransferPatch',
  uplink: 'NiddUplinkDataNotification',
  deliveryStatus: 'NiddDownlinkDataDeliveryStatusNotification',
  groupDelivery: 'GmdNiddDownlinkDataDeliveryNotification',
  configurationStatus: 'NiddConfigurationStatusNotification',
  failure: 'NiddDownlinkDataDeliveryFailure',
  configurations: `${P}/get/responses/200/content/application~1json/schema`,
  deliveries: `${P}~1{configurationId}~1downlink-data-deliveries/get/responses/200/content/application~1json/schema`,
} as const;

/** PdnEstablishmentOptions this SCEF acts on; WAIT_FOR_UE when neither the transfer nor its configuration says. */
export const PDN_OPTIONS = ['WAIT_FOR_UE', 'INDICATE_ERROR', 'SEND_TRIGGER'] as const;
export type PdnOption = (typeof PDN_OPTIONS)[number];

/** Members naming the UE or group, and the authorization target kind of each. */
export const IDENTIFIERS = { externalId: 'externalId', msisdn: 'msisdn', externalGroupId: 'externalGroupId' } as const;
export type Identifier = { readonly kind: keyof typeof IDENTIFIERS; readonly value: string };

/** The one UE or group a configuration or transfer names, or undefined when it names none or several. */
export function identifierOf(body: { externalId?: string; msisdn?: string; externalGroupId?: string }): Identifier | undefined {
  const present = (Object.keys(IDENTIFIERS) as (keyof typeof IDENTIFIERS)[]).filter(k => typeof body[k] === 'string');
  return present.length === 1 ? { kind: present[0], value: body[present[0]]! } : undefined;
}

export const sameIdentifier = (a: Identifier | undefined, b: Identifier | undefined): boolean => a !== undefined && b !== undefined && a.kind === b.kind && a.value === b.value;

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Size in bytes of the non-IP data a `Bytes` member carries, or undefined when it is not base64 of at least one byte. */
export function dataBytes(data: unknown): number | undefined {
  if (typeof data !== 'string' || data.length === 0 || !BASE64.test(data)) return undefined;
  return Buffer.byteLength(data, 'base64');
}

/** Refuses non-IP data that is not base64 of at least one byte (the schema takes any string). */
export function assertData(pointer: string, data: unknown): void {
  if (dataBytes(data) === undefined) throw invalidParam(pointer, 'must be base64 of at least one byte', PROBLEM_CAUSES.invalidParameter);
}

/** Refuses a PdnEstablishmentOptions value this SCEF does not know (the schema admits any string). */
export function assertPdnOption(pointer: string, value: unknown): void {
  if (value !== undefined && !(PDN_OPTIONS as readonly unknown[]).includes(value)) throw invalidParam(pointer, `must be one of ${PDN_OPTIONS.join(', ')}`);
}

/**
 * Refuses members only the SCEF writes, unless they are the stored values carried along (a merge
 * patch's document, a replacement read back and sent again).
 */
export function assertScefMembers(body: Record<string, unknown>, members: readonly string[], existing: Record<string, unknown> | undefined, prefix = ''): void {
  for (const m of members) {
    if (m in body && (!existing || JSON.stringify(body[m]) !== JSON.stringify(existing[m]))) throw invalidParam(`${prefix}/${m}`, 'is written by the SCEF only');
  }
}
