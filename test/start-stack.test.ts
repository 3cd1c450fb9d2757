import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '@aese/runtime';
import { connect as natsConnect } from 'nats';
import { freePort, tempDir } from '@aese/testing';
import { killLeftovers, runsInStack } from './support/processes.ts';

const SERVICES = ['crypto', 'authentication', 'authorization', 'replay-guard', 'capability-exposure', 'edge'] as const;
const PORT_ENV: Record<(typeof SERVICES)[number], string> = {
  crypto: 'CRYPTO_PORT',
  authentication: 'AUTHENTICATION_PORT',
  authorization: 'AUTHORIZATION_PORT',
  'replay-guard': 'REPLAY_GUARD_PORT',
  'capability-exposure': 'CAPABILITY_EXPOSURE_PORT',
  edge: 'EDGE_PORT',
};

/** The environment of the test process without any AESE setting that could leak in from a shell. */
function cleanEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !/^(AESE_|NATS_URL$|LISTEN_HOST$|PORT$)|_ADDR$|_PORT$/.test(e[0])),
  );
}

/** `npm start` without npm in between, so the signal reaches the script itself. */
class StartProcess {
  readonly child: ChildProcess;
  output = '';
  readonly exited: Promise<number | null>;

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts'], {
      cwd: REPO_ROOT,
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.on('data', (b: Buffer) => (this.output += b.toString('utf8')));
    this.child.stderr!.on('data', (b: Buffer) => (this.output += b.toString('utf8')));
    this.exited = new Promise(resolve => this.child.once('exit', code => resolve(code)));
  }

  /** Resolves with the first match of `pattern` in the output; rejects if the process exits first. */
  async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const m = this.output.match(pattern);
      if (m) return m;
      if (this.child.exitCode !== null) throw new Error(`start exited (${this.child.exitCode}) before ${pattern}:\n${this.output}`);
      if (Date.now() > until) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${this.output}`);
      await new Promise(r => setTimeout(r, 100));
    }
  }

  /** The pid of every service the script reported starting. */
  pids(): Map<string, number> {
    return new Map([...this.output.matchAll(/^start\s+\| starting (\S+) \(pid (\d+)\)$/gm)].map(m => [m[1], Number(m[2])]));
  }
}

function aese(args: readonly string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'aese.mjs'), ...args], {
      env: { ...cleanEnv(), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.once('error', reject);
    child.once('close', code => resolve({ code, stdout, stderr }));
  });
}

interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

/** One HTTPS request to the edge as an AS would make it: SNI and Host are the edge's name. */
function edgeRequest(port: number, tls: TlsFiles, method: string, path: string, form?: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }> {
  const body = form ? new URLSearchParams(form).toString() : undefined;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        servername: 'localhost',
        port,
        method,
        path,
        headers: {
          host: `localhost:${port}`,
          accept: 'application/json',
          ...(body ? { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body) } : {}),
        },
        cert: readFileSync(tls.cert),
        key: readFileSync(tls.key),
        ca: readFileSync(tls.ca),
        timeout: 10_000,
      },
      res => {
        let text = '';
        res.on('data', (b: Buffer) => (text += b.toString('utf8')));
        res.on('end', () => {
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> });
          } catch (err) {
            reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`, { cause: err }));
          }
        });
      },
    );
    req.once('error', reject);
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.end(body);
  });
}

describe('npm start (scripts/start.ts)', function () {
  // About 15 s on an idle machine; the bounds leave room for a loaded one.
  this.timeout(180_000);
  let dir: ReturnType<typeof tempDir>;
  let start: StartProcess | undefined;

  beforeEach(async () => {
    dir = tempDir('aese-start');
  });
  afterEach(async () => {
    // A failed test must not leave a mesh running: the script first, then whatever it reported.
    if (start && start.child.exitCode === null) {
      start.child.kill('SIGTERM');
      await start.exited;
    }
    killLeftovers(start?.pids().values() ?? [], join(dir.path, 'state'));
    start = undefined;
    dir.remove();
  });

  async function portsEnv(): Promise<Record<string, string>> {
    const env: Record<string, string> = {};
    for (const s of SERVICES) env[PORT_ENV[s]] = String(await freePort());
    return env;
  }

  it('starts the mesh with its PKI, serves the edge to an onboarded AS, and stops every child on SIGINT', async () => {
    const stateDir = join(dir.path, 'state');
    const ports = await portsEnv();
    // info: the level a probe's refused connection would be logged at.
    start = new StartProcess({ AESE_STATE_DIR: stateDir, LOG_LEVEL: 'info', ...ports });
    const [, edgeUrl] = await start.waitFor(/the T8 edge listens at (https:\/\/\S+)/, 120_000);
    // Everything logged while starting, before this test opens connections of its own.
    const upOutput = start.output;
    expect(edgeUrl).to.equal(`https://localhost:${ports['EDGE_PORT']}`);
    expect(start.output).to.match(/created the PKI in /);
    expect(start.output).to.match(/created the key-encryption key /);
    // Its own NATS, configured for this deployment, under the state folder.
    const natsPort = Number(start.output.match(/starting a private nats-server on 127\.0\.0\.1:(\d+) \(configuration (\S+),/)?.[1]);
    expect(start.output).to.include(`configuration ${join(stateDir, 'nats', 'nats.conf')}`);
    expect(natsPort).to.be.greaterThan(0);
    // Nobody gets in without a mesh certificate: a plain client and a TLS client without one are refused.
    let anonymous = 'connected';
    await natsConnect({ servers: `nats://127.0.0.1:${natsPort}`, timeout: 3_000 })
      .then(nc => nc.close())
      .catch((err: Error) => (anonymous = err.message));
    expect(anonymous).not.to.equal('connected');
    let withoutCert = 'connected';
    await natsConnect({ servers: `tls://127.0.0.1:${natsPort}`, timeout: 3_000, tls: { ca: readFileSync(join(stateDir, 'pki', 'mesh-ca.crt'), 'utf8') } })
      .then(nc => nc.close())
      .catch((err: Error) => (withoutCert = err.message));
    expect(withoutCert).not.to.equal('connected');
    expect(start.output).to.include('npx aese as onboard');
    const pids = start.pids();
    expect([...pids.keys()]).to.deep.equal([...SERVICES]);

    // The supervisor's readiness probes reach no service: nothing logs a failed handshake.
    expect(upOutput).not.to.match(/handshake/i);
    // Each gRPC service was ready once its health said SERVING (asked as the operator), not when it listened.
    for (const service of SERVICES.filter(s => s !== 'edge')) {
      expect(upOutput, service).to.match(new RegExp(`^start\\s+\\| ${service} ready on \\S+ after [0-9.]+ s \\(health: SERVING\\)$`, 'm'));
    }
    expect(start.output).to.include(`npx aese as onboard my-as --scope 3gpp-monitoring-event --out ~/aese-bundles/my-as`);
    expect(start.output).to.include(`npx aese policy grant my-as --api 3gpp-monitoring-event`);

    // Only the state folder: the CLI finds the services (on non-default ports) and the edge URL in stack.json.
    const stateOnly = { AESE_STATE_DIR: stateDir };
    const bundle = join(dir.path, 'as-start');
    const onboard = await aese(['as', 'onboard', 'as-start', '--scope', '3gpp-monitoring-event', '--out', bundle], stateOnly);
    expect(onboard.code, `${onboard.stderr}\nnpm start said:\n${start.output}`).to.equal(0);
    expect(onboard.stdout).to.include('as-start has no grant yet');
    expect((JSON.parse(readFileSync(join(bundle, 'as.json'), 'utf8')) as { edgeUrl: string }).edgeUrl).to.equal(edgeUrl);
    const network = await aese(['network', 'list', '--json'], stateOnly);
    expect(network.code, network.stderr).to.equal(0);
    const ue = (JSON.parse(network.stdout) as { ues: { externalId: string }[] }).ues[0].externalId;
    const grant = await aese(['policy', 'grant', 'as-start', '--api', '3gpp-monitoring-event', '--category', 'location', '--target', `externalId:${ue}`], stateOnly);
    expect(grant.code, grant.stderr).to.equal(0);
    expect(grant.stdout).to.match(/^as-start\s+3gpp-monitoring-event\s+create,read,update,delete,notify\s+location\s+1\s/m);
    const tls = { cert: join(bundle, 'client.crt'), key: join(bundle, 'client.key'), ca: join(bundle, 'ca.crt') };
    const edgePort = Number(ports['EDGE_PORT']);

    const metadata = await edgeRequest(edgePort, tls, 'GET', '/.well-known/oauth-authorization-server');
    expect(metadata.status).to.equal(200);
    expect(metadata.json['issuer']).to.equal(edgeUrl);
    expect(metadata.json['token_endpoint']).to.equal(`${edgeUrl}/oauth2/token`);

    const token = await edgeRequest(edgePort, tls, 'POST', '/oauth2/token', {
      grant_type: 'client_credentials',
      client_id: 'as-start',
      scope: '3gpp-monitoring-event',
    });
    expect(token.status, JSON.stringify(token.json)).to.equal(200);
    expect(token.json['token_type']).to.match(/^bearer$/i);
    expect(token.json['access_token']).to.be.a('string');

    // The CLI finds the running stack's NATS from the state folder, with no NATS_URL.
    const tail = await aese(['audit', 'tail', '-n', '5'], { AESE_STATE_DIR: stateDir });
    expect(tail.code, tail.stderr).to.equal(0);
    expect(existsSync(join(stateDir, 'stack.json'))).to.equal(true);

    // Control for the check after the stop: each service is seen as this stack's while it runs.
    for (const [name, pid] of pids) expect(runsInStack(pid, stateDir), `${name} (pid ${pid}) runs`).to.equal(true);
    start.child.kill('SIGINT');
    expect(await start.exited).to.equal(0);
    expect(start.output).to.match(/SIGINT received; stopping/);
    expect(start.output).to.match(/^start\s+\| stopped$/m);
    for (const [name, pid] of pids) expect(runsInStack(pid, stateDir), `${name} (pid ${pid}) still runs`).to.equal(false);
    // Stopped: the CLI says there is no running stack instead of reaching for another NATS.
    expect(existsSync(join(stateDir, 'stack.json'))).to.equal(false);
    const after = await aese(['audit', 'tail'], { AESE_STATE_DIR: stateDir });
    expect(after.code).to.equal(1);
    expect(after.stderr).to.match(/no running stack for the state folder .*: start it with npm start, or set NATS_URL/);
  });

  it('stops every service and exits non-zero when one of them dies, even during start-up', async () => {
    const ports = await portsEnv();
    start = new StartProcess({ AESE_STATE_DIR: join(dir.path, 'state'), LOG_LEVEL: 'warn', ...ports });
    await start.waitFor(/^start\s+\| authentication ready on /m, 120_000);
    process.kill(start.pids().get('crypto')!, 'SIGKILL');
    expect(await start.exited).to.equal(1);
    expect(start.output).to.match(/crypto exited \(signal SIGKILL\); stopping/);
    expect(start.output).not.to.match(/SCEF is up/);
    const pids = start.pids();
    expect(pids.size).to.be.greaterThanOrEqual(2);
    for (const [name, pid] of pids) expect(runsInStack(pid, join(dir.path, 'state')), `${name} (pid ${pid}) still runs`).to.equal(false);
  });
});
