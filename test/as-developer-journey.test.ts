/**
 * The AS developer's journey, run from docs/as-developer-guide.md itself: the guide's fenced
 * ```sh journey:<step>``` blocks are the commands this test runs, in a real shell, against a
 * real mesh (mTLS, OAuth, RFC 9421, Cedar, JWE): the example AS (examples/as-client, public
 * libraries only) gets a token, creates signed subscriptions, verifies each answer's signature,
 * decrypts the JWE the policy obliges, receives signed notifications over mTLS and deletes.
 *
 * Only documented things are substituted: the home folder (`~`, where the bundle and the
 * receiver's certificate go) is a temporary one, the receiver port 9443 a free port, and the CLI gets the documented settings
 * (AESE_STATE_DIR, the *_ADDR variables, NATS_URL, AESE_EDGE_URL) of this mesh in its
 * environment; the guide's `npm start` block gives the notification settings the mesh starts with.
 * The cause table's check against the code lives here too: the guide lists exactly the causes
 * the edge, capability exposure and authorization can answer.
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { join } from 'node:path';
import { BUILTIN_MODULES } from '@aese/capability-exposure-service';
import { startEdgeService } from '@aese/edge-service';
import { REPO_ROOT } from '@aese/runtime';
import { eventually, freePort, tempDir } from '@aese/testing';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';

const GUIDE = readFileSync(join(REPO_ROOT, 'docs', 'as-developer-guide.md'), 'utf8');
/** The receiver port the guide uses; the test gives it a free one. */
const GUIDE_RECEIVER_PORT = '9443';

/** The guide's journey blocks by step name, in the order the guide shows them. */
function journeyBlocks(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const m of markdown.matchAll(/^```sh journey:([a-z-]+)\n([\s\S]*?)^```$/gm)) {
    expect(blocks.has(m[1]), `journey step ${m[1]} appears twice`).to.equal(false);
    blocks.set(m[1], m[2]);
  }
  return blocks;
}

/** The cause codes in the guide's cause table (first column of the rows under "## Errors"). */
function guideCauses(markdown: string): string[] {
  const section = markdown.slice(markdown.indexOf('\n## Errors'));
  const table = section.slice(0, section.indexOf('\n## ', 4));
  return [...table.matchAll(/^\| `([A-Za-z_]+)` \|/gm)].map(m => m[1]);
}

/** The string values matched in a source file, within the text from `from` to the next `to`. */
function causesIn(file: string, from: string, to: string, pattern: RegExp): string[] {
  const text = readFileSync(join(REPO_ROOT, file), 'utf8');
  const start = text.indexOf(from);
  expect(start, `${file}: ${from}`).to.be.at.least(0);
  const part = text.slice(start, text.indexOf(to, start));
  return [...part.matchAll(pattern)].map(m => m[1]);
}

/** POSTs to the example receiver with a client certificate; the status, or 'refused' for a failed handshake. */
function postToReceiver(port: number, client: { cert: string; key: string }, caFile: string): Promise<number | 'refused'> {
  return new Promise(resolve => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/notifications',
        method: 'POST',
        cert: readFileSync(client.cert),
        key: readFileSync(client.key),
        ca: readFileSync(caFile),
        headers: { 'content-type': 'application/json' },
        agent: false,
      },
      res => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve('refused'));
    req.end('{}');
  });
}

/** A bash that keeps its variables between blocks, as the developer's terminal does. */
class Terminal {
  private out = '';
  private err = '';
  private exited: number | null | undefined;
  private readonly child: ChildProcessWithoutNullStreams;

  constructor(env: NodeJS.ProcessEnv) {
    this.child = spawn('bash', ['--noprofile', '--norc'], { cwd: REPO_ROOT, env, stdio: 'pipe' });
    this.child.stdout.on('data', (b: Buffer) => (this.out += b.toString('utf8')));
    this.child.stderr.on('data', (b: Buffer) => (this.err += b.toString('utf8')));
    this.child.once('exit', code => (this.exited = code));
    this.child.stdin.write('set -euo pipefail\n');
  }

  /** Runs one block; resolves with what it printed, rejects (with the output) when a command fails. */
  async run(block: string, timeoutMs = 60_000): Promise<{ stdout: string; stderr: string }> {
    const marker = `__journey_${Math.random().toString(36).slice(2)}__`;
    const [o, e] = [this.out.length, this.err.length];
    this.child.stdin.write(`${block}\necho ${marker}\necho ${marker} >&2\n`);
    const done = () => this.out.includes(`${marker}\n`, o) && this.err.includes(`${marker}\n`, e);
    try {
      await eventually(() => done() || this.exited !== undefined, timeoutMs, 'the block to finish');
    } catch (err) {
      throw new Error(`${(err as Error).message}\n--- block\n${block}\n--- stdout\n${this.out.slice(o)}\n--- stderr\n${this.err.slice(e)}`, { cause: err });
    }
    const result = { stdout: this.out.slice(o).replace(`${marker}\n`, ''), stderr: this.err.slice(e).replace(`${marker}\n`, '') };
    if (!done()) throw new Error(`a command failed (shell exit ${this.exited})\n--- block\n${block}\n--- stdout\n${result.stdout}\n--- stderr\n${result.stderr}`);
    return result;
  }

  close(): void {
    if (this.exited === undefined) this.child.stdin.end('exit 0\n');
  }
}

describe("AS developer journey: the guide's commands against a real mesh", function () {
  this.timeout(180_000);
  const work = tempDir('aese-journey');
  const blocks = journeyBlocks(GUIDE);
  let mesh: TestMesh | undefined;
  let terminal: Terminal | undefined;
  let receiver: ChildProcessWithoutNullStreams | undefined;
  let receiverOut = '';
  let receiverErr = '';
  let receiverPort: number;
  let edgePort: number;

  const substituted = (step: string): string => {
    const block = blocks.get(step);
    if (block === undefined) throw new Error(`the guide has no journey:${step} block`);
    return block.replaceAll('~/', `${work.path}/`).replaceAll(GUIDE_RECEIVER_PORT, String(receiverPort));
  };

  after(async () => {
    terminal?.close();
    if (receiver?.pid !== undefined && receiver.exitCode === null) process.kill(-receiver.pid, 'SIGTERM');
    await mesh?.stop();
    work.remove();
  });

  it('runs the example with the versions it declares: the root installs exactly its dependencies', () => {
    type Manifest = { dependencies?: Record<string, string>; devDependencies?: Record<string, string> };
    const read = (path: string): Manifest => JSON.parse(readFileSync(join(REPO_ROOT, path), 'utf8')) as Manifest;
    const example = read('examples/as-client/package.json');
    const root = read('package.json');
    const installed = { ...root.dependencies, ...root.devDependencies };
    const declared = Object.entries(example.dependencies ?? {});
    expect(declared.length).to.be.greaterThan(0);
    for (const [name, version] of declared) expect(installed[name], name).to.equal(version);
  });

  it('lists, in order, the steps this test runs', () => {
    expect([...blocks.keys()]).to.deep.equal(['receiver-cert', 'start', 'onboard', 'grant', 'receive', 'subscribe', 'qos', 'delete']);
  });

  it('goes from the onboarding bundle to verified, decrypted answers and notifications', async () => {
    receiverPort = await freePort();
    edgePort = await freePort();
    const edgeUrl = `https://localhost:${edgePort}`;
    const cliEnv = (m: TestMesh): Record<string, string> => ({
      AESE_STATE_DIR: m.stateDir,
      AESE_TRUST_DOMAIN: m.trustDomain,
      AESE_EDGE_URL: edgeUrl,
      NATS_URL: m.env['NATS_URL'],
      AUTHENTICATION_ADDR: m.env['AUTHENTICATION_ADDR'],
      AUTHORIZATION_ADDR: m.env['AUTHORIZATION_ADDR'],
      REPLAY_GUARD_ADDR: m.env['REPLAY_GUARD_ADDR'],
      CRYPTO_ADDR: m.env['CRYPTO_ADDR'],
      CAPABILITY_EXPOSURE_ADDR: m.env['CAPABILITY_EXPOSURE_ADDR'],
    });
    // HOME: `aese as onboard` writes the bundle to ~/aese-bundles/<scsAsId> by default.
    const base = { ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^AESE_|_ADDR$|^NATS_|^NOTIFICATION_/.test(k))), HOME: work.path };

    // 1. The AS makes its receiver's certificate (before the SCEF starts: it trusts its CA).
    terminal = new Terminal(base);
    await terminal.run(substituted('receiver-cert'));

    // 2. The operator starts the SCEF with the notification settings the guide names.
    const start = substituted('start').trim();
    const startLine = /^((?:[A-Z_]+=\S+ )+)npm start$/m.exec(start);
    expect(startLine, start).to.not.equal(null);
    const notificationEnv = Object.fromEntries(
      startLine![1]
        .trim()
        .split(' ')
        .map(a => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]),
    );
    expect(Object.keys(notificationEnv).sort()).to.deep.equal(['NOTIFICATION_CA_FILE', 'NOTIFICATION_DESTINATION_ALLOWLIST']);
    expect(notificationEnv['NOTIFICATION_DESTINATION_ALLOWLIST']).to.equal(`127.0.0.1:${receiverPort}`);
    mesh = await startTestMesh({
      edge: (env, logger) => startEdgeService({ ...env, PORT: String(edgePort) }, logger),
      // SIM_TICK_MS (a documented setting): the simulated UE moves every 200 ms instead of 5 s.
      extraEnv: { ...notificationEnv, AESE_ISSUER: edgeUrl, SIM_TICK_MS: '200' },
    });
    terminal.close();
    terminal = new Terminal({ ...base, ...cliEnv(mesh) });

    // 3-4. The operator onboards the AS and grants it the UEs and categories.
    await terminal.run(substituted('onboard'));
    const bundle = join(work.path, 'aese-bundles', 'my-as');
    const asJson = JSON.parse(readFileSync(join(bundle, 'as.json'), 'utf8')) as { scsAsId: string; edgeUrl: string };
    expect(asJson).to.include({ scsAsId: 'my-as', edgeUrl });
    await terminal.run(substituted('grant'));

    // 5. The AS's receiver, in its own terminal.
    receiver = spawn('bash', ['--noprofile', '--norc', '-c', `set -euo pipefail\n${substituted('receive')}`], {
      cwd: REPO_ROOT,
      env: { ...base, ...cliEnv(mesh) },
      stdio: 'pipe',
      detached: true,
    });
    receiver.stdout.on('data', (b: Buffer) => (receiverOut += b.toString('utf8')));
    receiver.stderr.on('data', (b: Buffer) => (receiverErr += b.toString('utf8')));
    await eventually(() => receiverErr.includes('receiving notifications on') || receiver!.exitCode !== null, 20_000, 'the receiver to listen');
    expect(receiver.exitCode, receiverErr).to.equal(null);

    // 6. Token, signed create (the answer is a JWE: policy obliges it for location), read back.
    const sub = await terminal.run(substituted('subscribe'));
    const token = JSON.parse(sub.stdout.slice(0, sub.stdout.indexOf('\n}\n') + 2)) as { scope: string; claims: { sub: string; cnf: Record<string, string> } };
    expect(token.claims.sub).to.equal('my-as');
    expect(token.claims.cnf).to.have.property('x5t#S256');
    expect(sub.stderr).to.include('HTTP 201');
    expect(sub.stderr.match(/response signature verified: keyid \S+, created \d+, covers the request signature \(;req\)/g), sub.stderr).to.have.length(2);
    expect(sub.stderr).to.match(/response body decrypted: JWE ECDH-ES\+A256KW \/ A256GCM/);
    expect(sub.stderr).to.include('HTTP 200');
    const location = new RegExp(`${edgeUrl}/3gpp-monitoring-event/v1/my-as/subscriptions/[0-9a-f-]{36}`).exec(sub.stdout)?.[0];
    expect(location, sub.stdout).to.be.a('string');

    // The receiver: the TestNotification, then location reports, each verified and the reports decrypted.
    const notifications = () =>
      receiverOut
        .split('\n')
        .filter(l => l.startsWith('{'))
        .map(l => JSON.parse(l) as { verified: boolean; encrypted: boolean; path: string; body: Record<string, unknown> });
    await eventually(
      () => notifications().some(n => n.encrypted && Array.isArray(n.body['monitoringEventReports'])) || receiver!.exitCode !== null,
      30_000,
      'a location notification',
    );
    const seen = notifications();
    expect(
      seen.find(n => n.path === '/notifications' && n.body['subscription'] === location && n.body['monitoringEventReports'] === undefined),
      receiverOut,
    ).to.include({ verified: true, encrypted: false });
    const report = seen.find(n => n.encrypted)!;
    expect(report.body['subscription']).to.equal(location);
    expect((report.body['monitoringEventReports'] as { externalId?: string; monitoringType: string }[])[0]).to.include({
      externalId: 'ue1@scef.test',
      monitoringType: 'LOCATION_REPORTING',
    });
    // Nothing was refused: every notification came from the SCEF, fresh and once.
    expect(receiverErr).to.not.include('refused');

    const qos = await terminal.run(substituted('qos'));
    // AsSessionWithQoS: no encryption obligation, so only the list asked for with Accept: application/jose is a JWE.
    expect(qos.stderr.match(/response signature verified/g), qos.stderr).to.have.length(4);
    expect(qos.stderr.match(/response body decrypted: JWE ECDH-ES\+A256KW \/ A256GCM/g), qos.stderr).to.have.length(1);
    expect(qos.stdout.match(/"qosReference": "qos-gold"/g), qos.stdout).to.have.length(2);

    // 7. Delete the subscription; reading it again is a (signed) 404 the example reports as a failure.
    const deleted = await terminal.run(substituted('delete'));
    expect(deleted.stderr).to.include('HTTP 204');
    expect(deleted.stderr).to.include('response signature verified');
    const gone = await terminal.run(`node examples/as-client/src/cli.mjs --bundle ${bundle} get "${location}" || echo "exit $?"`);
    expect(gone.stderr).to.include('HTTP 404');
    expect(gone.stderr).to.include('cause RESOURCE_NOT_FOUND');
    expect(gone.stdout).to.include('exit 1');

    // The receiver lets only the SCEF's notifier in: the edge's own T8 server certificate (same
    // CA, another identity) is refused, and nothing is printed for it.
    const printed = notifications().length;
    const status = await postToReceiver(receiverPort, mesh.layout.edgeT8, join(work.path, 'aese-receiver', 'ca.crt'));
    expect(status).to.not.equal(204);
    expect(notifications()).to.have.length(printed);
  });

  it('lists in its cause table exactly the causes the code can answer', () => {
    const edge = causesIn('services/edge/src/domain/t8-denials.ts', 'const DENIALS = {', '} as const', /cause: '([A-Za-z_]+)'/g);
    const shared = causesIn('services/capability-exposure/src/domain/problem.ts', 'export const PROBLEM_CAUSES = {', '} as const', /: '([A-Za-z_]+)',/g);
    const ce = [...shared, ...BUILTIN_MODULES.flatMap(m => Object.values(m.causes ?? {}))];
    const authz = causesIn('services/authorization/src/domain/vocabulary.ts', 'export const DENY_CAUSES = {', '} as const', /: '([A-Z_]+)',/g);
    expect(edge.length, 'edge causes').to.be.above(10);
    expect(ce.length, 'capability-exposure causes').to.be.above(10);
    expect(authz.length, 'authorization causes').to.be.above(5);
    const code = [...new Set([...edge, ...ce, ...authz])].sort();
    expect([...guideCauses(GUIDE)].sort()).to.deep.equal(code);
  });
});
