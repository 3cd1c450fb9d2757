import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '@aese/runtime';
import { freePort, tempDir } from '@aese/testing';
import { BUILD_ENTRIES, PROBE_LAUNCHER } from '../scripts/build.ts';
import { edgeRequest } from './support/as-client.ts';
import { killLeftovers, runsInStack } from './support/processes.ts';

const SERVICES = ['crypto', 'authentication', 'authorization', 'replay-guard', 'capability-exposure', 'edge'] as const;
type Service = (typeof SERVICES)[number];
const portEnv = (s: Service): string => `${s.toUpperCase().replace(/-/g, '_')}_PORT`;

/** The test's environment without AESE settings, ports or node options that could leak in from a shell. */
function cleanEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((e): e is [string, string] => e[1] !== undefined && !/^(AESE_|NATS_URL$|LISTEN_HOST$|PORT$|NODE_OPTIONS$)|_ADDR$|_PORT$/.test(e[0])),
  );
}

/** Runs a built script with plain node; resolves with its exit status and output. */
function runBuilt(file: string, args: readonly string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [file, ...args], { env: { ...cleanEnv(), ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.once('error', reject);
    child.once('close', code => resolve({ code, stdout, stderr }));
  });
}

/** The NUL-separated fields of a /proc file. */
const procFields = (pid: number, file: 'cmdline' | 'environ'): string[] => readFileSync(`/proc/${pid}/${file}`, 'utf8').split('\0').filter(Boolean);

describe('production build: npm start -- --production runs the bundles with plain node', function () {
  // The build takes a few seconds and the stack about 15 s on an idle machine; the bounds leave room
  // for a loaded one.
  this.timeout(300_000);
  const dir = tempDir('aese-production');
  let start: ChildProcess | undefined;
  let output = '';
  const pids = (): Map<string, number> => new Map([...output.matchAll(/^start\s+\| starting (\S+) \(pid (\d+)\)$/gm)].map(m => [m[1], Number(m[2])]));

  after(async () => {
    if (start && start.exitCode === null) {
      start.kill('SIGTERM');
      await new Promise(r => start!.once('exit', r));
    }
    killLeftovers(pids().values(), join(dir.path, 'state'));
    dir.remove();
  });

  async function waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const m = output.match(pattern);
      if (m) return m;
      if (start!.exitCode !== null) throw new Error(`start exited (${start!.exitCode}) before ${pattern}:\n${output}`);
      if (Date.now() > until) throw new Error(`no ${pattern} within ${timeoutMs} ms:\n${output}`);
      await new Promise(r => setTimeout(r, 100));
    }
  }

  it('builds, starts every service from its bundle without tsx, each SERVING to the probe over mTLS, and the edge issues a token', async () => {
    const buildDir = join(dir.path, 'dist');
    const stateDir = join(dir.path, 'state');
    const ports = Object.fromEntries(await Promise.all(SERVICES.map(async s => [s, await freePort()] as const))) as Record<Service, number>;
    // `npm start -- --production` without npm in between, so the signal reaches the script itself.
    start = spawn(process.execPath, ['--import', 'tsx', 'scripts/start.ts', '--production'], {
      cwd: REPO_ROOT,
      env: {
        ...cleanEnv(),
        AESE_STATE_DIR: stateDir,
        AESE_BUILD_DIR: buildDir,
        LOG_LEVEL: 'warn',
        START_TIMEOUT_MS: '120000',
        ...Object.fromEntries(SERVICES.map(s => [portEnv(s), String(ports[s])])),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    start.stdout!.on('data', (b: Buffer) => (output += b.toString('utf8')));
    start.stderr!.on('data', (b: Buffer) => (output += b.toString('utf8')));
    await waitFor(/the T8 edge listens at https:\/\/\S+/, 280_000);

    expect(output).to.include(`built the services into ${buildDir}`);
    for (const out of [...BUILD_ENTRIES.map(e => e.out), PROBE_LAUNCHER]) expect(existsSync(join(buildDir, out)), out).to.equal(true);
    // The assets the code reads at run time sit next to its bundle.
    expect(existsSync(join(buildDir, 'authorization', 'assets', 'services', 'authorization', 'policies', 'base.cedar'))).to.equal(true);
    expect(existsSync(join(buildDir, 'capability-exposure', 'assets', 'libs', 't8-openapi', 'openapi', 'TS29122_MonitoringEvent.yaml'))).to.equal(true);

    // Every service is plain node on its bundle: no tsx on its command line, in NODE_OPTIONS or in the bundle.
    const started = pids();
    expect([...started.keys()]).to.deep.equal([...SERVICES]);
    for (const [service, pid] of started) {
      expect(procFields(pid, 'cmdline'), service).to.deep.equal([process.execPath, join(buildDir, service, 'main.mjs')]);
      const nodeOptions = procFields(pid, 'environ').find(e => e.startsWith('NODE_OPTIONS=')) ?? '';
      expect(nodeOptions, service).not.to.include('tsx');
      expect(readFileSync(join(buildDir, service, 'main.mjs'), 'utf8'), service).not.to.match(/from ["']tsx/);
    }

    // The container health probe: each gRPC service SERVING over mTLS as itself, the edge listening.
    const probe = join(buildDir, PROBE_LAUNCHER);
    for (const service of SERVICES) {
      const r = await runBuilt(probe, [service], { AESE_STATE_DIR: stateDir, PORT: String(ports[service]) });
      expect(r.code, `${service}: ${r.stdout}${r.stderr}`).to.equal(0);
      expect(r.stdout).to.equal(`${service}: SERVING\n`);
    }
    // It pins the server's identity: authorization's probe aimed at crypto's port fails.
    const impostor = await runBuilt(probe, ['authorization'], { AESE_STATE_DIR: stateDir, PORT: String(ports.crypto) });
    expect(impostor.code).to.equal(1);
    expect(impostor.stdout).to.match(/^authorization: /);
    expect(impostor.stdout).not.to.include('SERVING');
    // Nothing listening: not healthy either.
    const nobody = await runBuilt(probe, ['replay-guard'], { AESE_STATE_DIR: stateDir, PORT: String(await freePort()) });
    expect(nobody.code).to.equal(1);
    expect(nobody.stdout).not.to.include('SERVING');

    // The built CLI onboards an AS against the running stack; the edge issues it a token.
    const bundle = join(dir.path, 'as-prod');
    const onboard = await runBuilt(join(buildDir, 'cli', 'main.mjs'), ['as', 'onboard', 'as-prod', '--scope', '3gpp-monitoring-event', '--out', bundle], {
      AESE_STATE_DIR: stateDir,
    });
    expect(onboard.code, onboard.stderr).to.equal(0);
    const client = { certPem: readFileSync(join(bundle, 'client.crt'), 'utf8'), keyPem: readFileSync(join(bundle, 'client.key'), 'utf8') };
    const ca = readFileSync(join(bundle, 'ca.crt'), 'utf8');
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: 'as-prod', scope: '3gpp-monitoring-event' }).toString();
    const token = await edgeRequest({
      port: ports.edge,
      ca,
      client,
      method: 'POST',
      path: '/oauth2/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form,
    });
    expect(token.status, token.body).to.equal(200);
    expect((JSON.parse(token.body) as { access_token?: unknown }).access_token).to.be.a('string');
    // The same request without the AS certificate gets no token.
    await edgeRequest({ port: ports.edge, ca, method: 'POST', path: '/oauth2/token', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form }).then(
      r => expect(r.status).to.not.equal(200),
      (err: Error) => expect(err).to.be.instanceOf(Error),
    );

    start.kill('SIGINT');
    const code = await new Promise(r => start!.once('exit', r));
    expect(code, output).to.equal(0);
    for (const [name, pid] of started) expect(runsInStack(pid, stateDir), `${name} (pid ${pid}) still runs`).to.equal(false);
    expect(output).not.to.match(/start failed|exited \(/);
  });
});
