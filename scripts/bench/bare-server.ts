/**
 * The baseline of `npm run bench`: a bare Node HTTPS server with the edge's own TLS settings
 * (TLS 1.3 only, client certificates from the AS CA required) that answers every request with a
 * fixed JSON body. Started pinned to the server core by secure-path.ts.
 *
 * Usage: node --import tsx scripts/bench/bare-server.ts <config.json>
 * config: { certPem, keyPem, clientCaPem, body } ; prints "listening <port>" when ready.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:https';

interface BareConfig {
  readonly certPem: string;
  readonly keyPem: string;
  readonly clientCaPem: string;
  readonly body: string;
}

const config = JSON.parse(readFileSync(process.argv[2], 'utf8')) as BareConfig;
const body = Buffer.from(config.body);
const server = createServer(
  {
    cert: config.certPem,
    key: config.keyPem,
    ca: config.clientCaPem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: 'TLSv1.3',
    maxVersion: 'TLSv1.3',
  },
  (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(body.length) });
    res.end(body);
  },
);
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  const addr = server.address();
  process.stdout.write(`listening ${typeof addr === 'object' && addr ? addr.port : 0}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
