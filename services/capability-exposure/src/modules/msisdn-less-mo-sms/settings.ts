import { ConfigError } from '@aese/config';
import type { Setting } from '@aese/config';
import { MAX_DESTINATION_CHARS } from '@aese/net-guard';
import { SCS_AS_ID_PATTERN } from '../../domain/invoke.js';

/** Where the MO SMS sent to one application port go: the SCS/AS the operator configured for it. */
export interface MoSmsRoute {
  readonly applicationPort: number;
  readonly scsAsId: string;
  readonly notificationDestination: string;
}

const ENTRY = /^(\d{1,5}):([^:]+):(.+)$/;

/**
 * Parses `<port>:<scsAsId>:<https URL>` entries, comma-separated. The URL must be an absolute
 * https URI without user information, like every notification destination; its address is
 * checked (SSRF rules, DNS) before each notification, as an AS's is when it is written.
 *
 * @throws ConfigError naming the variable and the entry.
 */
export function parseMoSmsRoutes(raw: string, name: string): readonly MoSmsRoute[] {
  const routes: MoSmsRoute[] = [];
  const entries = raw
    .split(',')
    .map(e => e.trim())
    .filter(e => e.length > 0);
  entries.forEach((entry, i) => {
    const bad = (why: string) => new ConfigError(`setting ${name}: entry ${i + 1} ${why}`);
    const m = ENTRY.exec(entry);
    if (!m) throw bad('is not <port>:<scsAsId>:<https URL>');
    const applicationPort = Number(m[1]);
    if (applicationPort > 65_535) throw bad('has a port beyond 65535');
    if (routes.some(r => r.applicationPort === applicationPort)) throw bad('repeats a port: each port goes to one SCS/AS');
    if (!SCS_AS_ID_PATTERN.test(m[2])) throw bad('has an scsAsId that is not 1-64 characters of [A-Za-z0-9._-]');
    let url: URL;
    try {
      url = new URL(m[3]);
    } catch {
      throw bad('has a destination that is not an absolute URI');
    }
    if (url.protocol !== 'https:') throw bad('has a destination that does not use https');
    if (url.username !== '' || url.password !== '') throw bad('has a destination with user information');
    if (m[3].length > MAX_DESTINATION_CHARS) throw bad(`has a destination longer than ${MAX_DESTINATION_CHARS} characters`);
    routes.push({ applicationPort, scsAsId: m[2], notificationDestination: m[3] });
  });
  return Object.freeze(routes);
}

const moSmsApplicationPorts: Setting<readonly MoSmsRoute[]> = { env: 'MO_SMS_APPLICATION_PORTS', parse: parseMoSmsRoutes, default: [] };

/**
 * MsisdnLessMoSms's settings, spread into the service's (CAPABILITY_EXPOSURE_SETTINGS) so they
 * are read and checked once at start-up with the others.
 */
export const MSISDN_LESS_MO_SMS_SETTINGS = {
  /** Application ports of MSISDN-less MO SMS and the SCS/AS each one is delivered to; none by default. */
  moSmsApplicationPorts,
} as const;

/** The routes from the settings the module was given (none when they are absent). */
export function moSmsRoutesOf(settings: Readonly<Record<string, unknown>> | undefined): readonly MoSmsRoute[] {
  const v = settings?.['moSmsApplicationPorts'];
  return Array.isArray(v) ? (v as readonly MoSmsRoute[]) : [];
}
