import { createHash } from 'node:crypto';
import { identifierSyntaxError } from '@aese/t8-catalog';
import type { CapabilityEvent, CapabilityEventInput, NetworkAdapter, NetworkEvent } from '../../network/network-adapter.js';

export const MSISDN_LESS_MO_SMS_API = '3gpp-msisdn-less-mo-sms';
/** Capability event type of an MO SMS the SMS-SC hands the SCEF. */
export const MO_SMS_EVENT = 'mo-sms';
/** User data of one SMS, in octets. */
export const MAX_SMS_BYTES = 140;
/** Size of the report a simulated UE sends. */
const REPORT_BYTES = 16;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** An MO SMS of a UE without MSISDN, as the SMS-SC/IWMSC hands it to the SCEF over T4. */
export interface MoSms {
  /** The UE, by the External Identifier the SCEF mapped its IMSI to. */
  readonly externalId: string;
  /** The destination application port the UE addressed. */
  readonly applicationPort: number;
  /** The user data, base64. */
  readonly sms: string;
}

/** The capability event of an MO SMS (what a network adapter emits when the SMS-SC delivers one). */
export function moSmsEvent(sms: MoSms, atMs?: number): CapabilityEventInput {
  const { externalId, applicationPort } = sms;
  return { capability: MSISDN_LESS_MO_SMS_API, type: MO_SMS_EVENT, payload: { externalId, applicationPort, sms: sms.sms }, ...(atMs === undefined ? {} : { atMs }) };
}

/** The MO SMS an event carries, or undefined for anything else (a payload is untrusted input). */
export function readMoSms(event: CapabilityEvent): MoSms | undefined {
  if (event.capability !== MSISDN_LESS_MO_SMS_API || event.type !== MO_SMS_EVENT) return undefined;
  const { externalId, applicationPort, sms } = event.payload;
  if (typeof externalId !== 'string' || identifierSyntaxError('externalId', externalId) !== undefined) return undefined;
  if (!Number.isInteger(applicationPort) || (applicationPort as number) < 0 || (applicationPort as number) > 65_535) return undefined;
  if (typeof sms !== 'string' || !BASE64.test(sms) || Buffer.byteLength(sms, 'base64') > MAX_SMS_BYTES) return undefined;
  return { externalId, applicationPort: applicationPort as number, sms };
}

/**
 * The UEs that send MO SMS without an MSISDN: what they send reaches the SCEF as
 * {@link MO_SMS_EVENT} capability events, whichever replica handles them.
 */
export interface MoSmsNetwork {
  /** The UEs' own traffic after a network change. */
  afterChange(event: NetworkEvent): Promise<void>;
}

/**
 * Simulated devices: a UE that becomes reachable reports in with one MO SMS to the application
 * port of its application, one of the ports the operator configured (the same port for a UE every
 * time). The report follows from the UE and the time only, so a replayed event sends the same bytes.
 */
export class SimulatedMoSmsNetwork implements MoSmsNetwork {
  constructor(
    private readonly network: NetworkAdapter,
    private readonly ports: readonly number[],
  ) {}

  async afterChange(event: NetworkEvent): Promise<void> {
    if (event.kind !== 'reachability' || !event.reachable || this.ports.length === 0) return;
    const { externalId } = event.ue;
    const port = this.ports[createHash('sha256').update(`mo-sms-port\n${externalId}`).digest().readUInt32BE(0) % this.ports.length];
    const report = createHash('sha256').update(`mo-sms-report\n${externalId}\n${event.atMs}`).digest().subarray(0, REPORT_BYTES);
    await this.network.emit(moSmsEvent({ externalId, applicationPort: port, sms: report.toString('base64') }, event.atMs));
  }
}
