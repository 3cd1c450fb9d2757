import { request } from 'node:https';
import { isIP } from 'node:net';
import type { OutboundRequest } from './delivery.js';

/** A receiver must answer within this long. */
export const DEFAULT_NOTIFICATION_TIMEOUT_MS = 5_000;
/** At most this much of a receiver's answer is read (and then thrown away). */
const MAX_RESPONSE_BYTES = 16 * 1024;

export interface HttpsPosterOptions {
  /** The SCEF's notifier client certificate and key (T8 CA, clientAuth). */
  readonly certPem: string;
  readonly keyPem: string;
  /** Trust anchors for receivers; undefined means the system's public CAs. */
  readonly caPem: string | undefined;
  readonly timeoutMs?: number;
}

/**
 * POSTs over HTTPS to the vetted address only (the host name is used for SNI and certificate
 * checks, never resolved again), presenting the SCEF's client certificate. No redirects are
 * followed: a 3xx is the receiver's answer, not a new destination.
 */
export function httpsPoster(options: HttpsPosterOptions): (req: OutboundRequest) => Promise<number> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_NOTIFICATION_TIMEOUT_MS;
  return req =>
    new Promise<number>((resolve, reject) => {
      const { destination } = req;
      const path = `${destination.url.pathname}${destination.url.search}`;
      const r = request(
        {
          method: 'POST',
          host: destination.address ?? destination.host,
          port: destination.port,
          path,
          // SNI carries host names only (RFC 6066); an IP destination is checked against IP SANs.
          ...(isIP(destination.host) === 0 ? { servername: destination.host } : {}),
          headers: { ...req.headers, host: destination.url.host, 'content-length': String(req.body.length) },
          cert: options.certPem,
          key: options.keyPem,
          ...(options.caPem ? { ca: options.caPem } : {}),
          minVersion: 'TLSv1.2',
          timeout: timeoutMs,
          agent: false,
        },
        res => {
          let read = 0;
          res.on('data', (chunk: Buffer) => {
            read += chunk.length;
            if (read > MAX_RESPONSE_BYTES) res.destroy();
          });
          res.on('end', () => resolve(res.statusCode ?? 0));
          res.on('error', () => resolve(res.statusCode ?? 0));
        },
      );
      r.on('timeout', () => r.destroy(new Error('timeout')));
      r.on('error', reject);
      r.end(Buffer.from(req.body));
    });
}
