/**
 * The load generator of `npm run bench`, run pinned to the load core by secure-path.ts: one
 * autocannon warm-up and one measured run against one target, printed as one JSON line.
 *
 * For the secure path every request is signed afresh (RFC 9421, new nonce and `created`), as an
 * AS must sign them; signing runs here, on the load core, not on the measured one.
 *
 * With `replayProbes` set, a prober runs beside the measured run on its own TLS connection: every
 * `intervalMs` (at most `max` times) it signs a fresh request as the load does, expects it served,
 * sends the very same request again and expects the replay refusal (replay-probe.ts). Its counts
 * are in the JSON line as `replayProbes`; its requests are not in autocannon's totals.
 *
 * Usage: node --import tsx scripts/bench/load-runner.ts <config.json>
 */
import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';
import type { SignatureAlgorithm } from '@aese/http-signatures';
import { probeAgent, probeOnce, sendGet, signedGet, startReplayProber } from './replay-probe.ts';
import type { ProbeSigning, ReplayCounts } from './replay-probe.ts';

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
  /** Replay probes during the measured run (needs `signing`). */
  readonly replayProbes?: { readonly intervalMs: number; readonly max: number };
}

const config = JSON.parse(readFileSync(process.argv[2], 'utf8')) as RunnerConfig;
const authority = `localhost:${config.port}`;
const signing: ProbeSigning | undefined = config.signing && { ...config.signing, key: createPrivateKey(config.signing.pkcs8Pem) };
if (config.replayProbes && !signing) throw new Error('replay probes need the signing settings');

/** The headers of one request: for the secure path, a fresh signature with a fresh nonce. */
const headersFor = (): Record<string, string> => (signing ? signedGet(authority, config.path, signing) : { host: authority });

/** One probe on the prober's own connection: the fresh request, then the identical one again. */
const agent = probeAgent();
async function probe(counts: ReplayCounts): Promise<void> {
  const headers = headersFor();
  const send = () => sendGet(config.port, config, agent, config.path, headers);
  await probeOnce(counts, send, send);
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
const prober = config.replayProbes && startReplayProber({ ...config.replayProbes, probe });
const r = await run(config.durationS);
const replayProbes = await prober?.stop();
agent.destroy();
process.stdout.write(
  `${JSON.stringify({
    rps: r.requests.average,
    total: r.requests.total,
    p50: r.latency.p50,
    p99: r.latency.p99,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    ...(replayProbes ? { replayProbes } : {}),
  })}\n`,
);
