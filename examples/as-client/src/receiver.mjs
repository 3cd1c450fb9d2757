// The AS's notification receiver: HTTPS with mTLS (only the SCEF's notifier certificate gets
// in), every notification's RFC 9421 signature verified with the SCEF JWKS, replays and stale
// messages refused, JWE bodies decrypted. The status codes tell the SCEF what to do next:
// 2xx done, 408/429/5xx retry later, any other 4xx drop.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';
import { join } from 'node:path';
import { openBody, Refused, SKEW_S, verifyNotification, WINDOW_S } from './signatures.mjs';

const MAX_BODY_BYTES = 64 * 1024;
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

/** Nonces seen within the window; each one is kept until its `created` has left the window. */
export function nonceCache() {
  const seen = new Map();
  return {
    /** False when the nonce was already used (a replay). */
    add(nonce, created) {
      const now = Math.floor(Date.now() / 1000);
      for (const [n, expires] of seen) if (expires < now) seen.delete(n);
      if (seen.has(nonce)) return false;
      seen.set(nonce, created + WINDOW_S + SKEW_S);
      return true;
    },
  };
}

/** What the receiver answers for each refusal: a 4xx the SCEF drops, or a 5xx it retries. */
const STATUS = { signature: 401, digest: 400, stale: 401, replay: 409, 'media-type': 415, decrypt: 400, unavailable: 503 };

/**
 * The SCEF's notifier identity: a certificate from the T8 CA (checked by TLS against the
 * bundle's ca.crt), for client authentication, with the edge's SPIFFE ID
 * `spiffe://<trust-domain>/svc/edge`. The T8 CA also issues the edge's server certificate;
 * the SPIFFE ID and the clientAuth usage keep that one (and anything else) out.
 */
function isScefNotifier(cert, trustDomain) {
  const uris = (cert.subjectaltname ?? '')
    .split(', ')
    .filter(s => s.startsWith('URI:'))
    .map(s => s.slice(4));
  return uris.includes(`spiffe://${trustDomain}/svc/edge`) && (cert.ext_key_usage ?? []).includes(CLIENT_AUTH_OID);
}

/**
 * Starts the receiver on `host:port` with the server certificate in `certDir` (server.crt,
 * server.key). `onNotification` gets each verified notification; `onRefused` each refusal.
 */
export function startReceiver(bundle, scef, { host, port, certDir, onNotification, onRefused }) {
  const nonces = nonceCache();
  const server = createServer(
    {
      cert: readFileSync(join(certDir, 'server.crt'), 'utf8'),
      key: readFileSync(join(certDir, 'server.key'), 'utf8'),
      // The SCEF's notifier certificate chains to the T8 CA: the bundle's ca.crt.
      ca: bundle.tls.ca,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.2',
    },
    (req, res) => {
      const answer = (status, why) => {
        if (why) onRefused({ status, why, path: req.url });
        res.writeHead(status, { 'content-length': '0' }).end();
      };
      if (!isScefNotifier(req.socket.getPeerCertificate(), bundle.trustDomain)) return answer(403, 'the client certificate is not the SCEF notifier');
      if (req.method !== 'POST') return answer(405, `method ${req.method}`);
      const chunks = [];
      let size = 0;
      req.on('data', c => {
        size += c.length;
        if (size <= MAX_BODY_BYTES) chunks.push(c);
      });
      req.on('end', async () => {
        if (size > MAX_BODY_BYTES) return answer(413, 'body too large');
        const body = Buffer.concat(chunks);
        const message = { method: req.method, url: `https://${req.headers.host}${req.url}`, headers: req.headers, body };
        let params;
        try {
          params = await verifyNotification(scef.keyLookup, message);
        } catch (err) {
          // The JWKS could not be fetched: not the SCEF's fault, so let it retry.
          if (!(err instanceof Refused)) return answer(STATUS.unavailable, `cannot verify now: ${err.message}`);
          return answer(STATUS[err.kind], err.message);
        }
        if (!nonces.add(params.nonce, Number(params.created))) return answer(STATUS.replay, 'nonce already used: a replay');
        let opened;
        try {
          opened = await openBody(bundle, req.headers['content-type'], body);
        } catch (err) {
          return answer(err instanceof Refused ? STATUS[err.kind] : STATUS.decrypt, `cannot read the body: ${err.message}`);
        }
        onNotification({ path: req.url, keyid: params.keyid, created: Number(params.created), encrypted: opened.encrypted, body: opened.json });
        answer(204);
      });
    },
  );
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
