/**
 * The load generator of `npm run bench`, run pinned to the load core by secure-path.ts: one
 * autocannon warm-up and one measured run against one target, printed as one JSON line.
 *
 * For the secure path every request is signed afresh (RFC 9421, new nonce and `created`), as an
 * AS must sign them; signing runs here, on the load core, not on the measured one.
 *
 * Usage: node --import tsx scripts/bench/load-runner.ts <config.json>
 */
import { createPrivateKey, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import { signMessage } from '@aese/http-signatures';
import type { SignatureAlgorithm } from '@aese/http-signatures';

interface RunnerConfig {
  readonly port: number;
  readonly path: string;
  readonly connections: number;
  readonly warmupS: number;
  readonly durationS: number;
  readonly certPem: string;
  readonly keyPem: string;
  readonly caPem: string;
  /** Absent for the bare server. */
  readonly signing?: { readonly token: string; readonly kid: string; readonly alg: SignatureAlgorithm; readonly pkcs8Pem: string };
}

const config = JSON.parse(readFileSync(process.argv[2], 'utf8')) as RunnerConfig;
const authority = `localhost:${config.port}`;
const key = config.signing ? createPrivateKey(config.signing.pkcs8Pem) : undefined;

/** The headers of one request: for the secure path, a fresh signature with a fresh nonce. */
function headersFor(): Record<string, string> {
  const headers: Record<string, string> = { host: authority };
  const s = config.signing;
  if (!s || !key) return headers;
  headers['authorization'] = `Bearer ${s.token}`;
  const signed = signMessage(
    { method: 'GET', targetUri: `https://${authority}${config.path}`, authority, headers },
    {
      label: 'sig1',
      components: ['@method', '@target-uri', 'authorization'],
      params: { created: Math.floor(Date.now() / 1000), nonce: randomBytes(16).toString('base64url'), keyid: s.kid },
      key,
      alg: s.alg,
    },
  );
  headers['signature-input'] = signed.signatureInput;
  headers['signature'] = signed.signature;
  return headers;
}

async function run(durationS: number): Promise<autocannon.Result> {
  return autocannon({
    url: `https://127.0.0.1:${config.port}`,
    servername: 'localhost',
    connections: config.connections,
    pipelining: 1,
    duration: durationS,
    tlsOptions: { cert: config.certPem, key: config.keyPem, ca: config.caPem, minVersion: 'TLSv1.3' },
    requests: [
      {
        method: 'GET',
        path: config.path,
        setupRequest: req => ({ ...req, headers: headersFor() }),
      },
    ],
  });
}

await run(config.warmupS);
const r = await run(config.durationS);
process.stdout.write(
  `${JSON.stringify({
    rps: r.requests.average,
    total: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  })}\n`,
);
