import { spawn } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { pkiLayout } from '@aese/pki';
import { REPO_ROOT } from '@aese/runtime';
import { tempDir } from '@aese/testing';

const AESE_BIN = join(REPO_ROOT, 'bin', 'aese.mjs');

interface CliResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the real `aese` binary with only the given AESE settings (none inherited from the shell). */
function aese(args: readonly string[], env: Record<string, string>): Promise<CliResult> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^AESE_|_ADDR$/.test(k)));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AESE_BIN, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
    child.once('error', reject);
    child.once('close', code => resolve({ code, stdout, stderr }));
  });
}

/** A failure is exactly one line on stderr, prefixed with the command name, with no stack. */
function expectOneLineError(res: CliResult, code: number, pattern: RegExp): void {
  expect(res.code, res.stderr).to.equal(code);
  expect(res.stderr.endsWith('\n')).to.equal(true);
  expect(res.stderr.trimEnd().split('\n'), res.stderr).to.have.length(1);
  expect(res.stderr).to.match(/^aese: /);
  expect(res.stderr).to.match(pattern);
  expect(res.stderr).not.to.match(/\bat .+:\d+:\d+/);
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter(e => e.isFile())
    .map(e => join(e.parentPath, e.name));
}

const mode = (path: string): number => statSync(path).mode & 0o777;

describe('aese pki init (CLI binary)', function () {
  this.timeout(30_000);
  let dir: ReturnType<typeof tempDir>;
  let stateDir: string;

  beforeEach(() => {
    dir = tempDir('aese-cli-pki');
    stateDir = join(dir.path, 'state');
  });
  afterEach(() => dir.remove());

  it('creates the PKI and the key-encryption key with owner-only keys, then changes nothing on a second run', async () => {
    const first = await aese(['pki', 'init', '--hostname', 'localhost', '--hostname', 'edge'], { AESE_STATE_DIR: stateDir });
    expect(first.code, first.stderr).to.equal(0);
    expect(first.stderr).to.equal('');
    expect(first.stdout).to.match(/created the PKI in .*trust domain scef\.local/);
    expect(first.stdout).to.match(/created the key-encryption key/);

    const layout = pkiLayout(stateDir);
    const meta = JSON.parse(readFileSync(layout.metadata, 'utf8')) as { trustDomain: string; t8Hostnames: string[] };
    expect(meta.trustDomain).to.equal('scef.local');
    expect(meta.t8Hostnames).to.deep.equal(['localhost', 'edge']);
    const keys = filesUnder(layout.root).filter(p => p.endsWith('.key'));
    expect(keys.length).to.be.greaterThanOrEqual(11);
    for (const key of keys) expect(mode(key), key).to.equal(0o600);
    for (const d of [stateDir, layout.root, layout.servicesDir, layout.operatorDir]) expect(mode(d), d).to.equal(0o700);
    const kekFile = join(stateDir, 'crypto-kek');
    expect(mode(kekFile)).to.equal(0o600);
    expect(Buffer.from(readFileSync(kekFile, 'utf8').trim(), 'base64')).to.have.length(32);
    expect(new X509Certificate(readFileSync(layout.edgeT8.cert)).subjectAltName).to.include('DNS:edge');

    const before = new Map(filesUnder(stateDir).map(p => [p, readFileSync(p, 'utf8')]));
    const second = await aese(['pki', 'init'], { AESE_STATE_DIR: stateDir });
    expect(second.code, second.stderr).to.equal(0);
    expect(second.stdout).to.match(/exists \(trust domain scef\.local\); nothing changed/);
    expect(second.stdout).to.match(/key-encryption key .* exists; kept/);
    const after = new Map(filesUnder(stateDir).map(p => [p, readFileSync(p, 'utf8')]));
    expect(after).to.deep.equal(before);
  });

  it('uses the trust domain given by flag or variable, and refuses one that contradicts the PKI', async () => {
    const made = await aese(['pki', 'init', '--trust-domain', 'scef.example.org'], { AESE_STATE_DIR: stateDir });
    expect(made.code, made.stderr).to.equal(0);
    expect(made.stdout).to.include('trust domain scef.example.org');
    // Without a flag or variable the PKI's own trust domain is used.
    const again = await aese(['pki', 'init'], { AESE_STATE_DIR: stateDir });
    expect(again.stdout).to.include('trust domain scef.example.org');
    const clash = await aese(['pki', 'init'], { AESE_STATE_DIR: stateDir, AESE_TRUST_DOMAIN: 'other.example' });
    expectOneLineError(clash, 1, /created for trust domain "scef\.example\.org", not "other\.example"/);
  });

  it('refuses a malformed trust domain as a usage error and creates nothing', async () => {
    const res = await aese(['pki', 'init', '--trust-domain', 'Not A Domain'], { AESE_STATE_DIR: stateDir });
    expectOneLineError(res, 2, /invalid trust domain/);
    expect(() => statSync(stateDir)).to.throw();
  });

  it('never replaces a key-encryption key it cannot read as 32 bytes', async () => {
    await aese(['pki', 'init'], { AESE_STATE_DIR: stateDir });
    const kekFile = join(stateDir, 'crypto-kek');
    writeFileSync(kekFile, 'c2hvcnQ=\n', { mode: 0o600 });
    const res = await aese(['pki', 'init'], { AESE_STATE_DIR: stateDir });
    expectOneLineError(res, 1, /crypto-kek exists but does not hold 32 bytes/);
    expect(readFileSync(kekFile, 'utf8')).to.equal('c2hvcnQ=\n');
  });
});

describe('aese command line (CLI binary)', function () {
  this.timeout(30_000);
  let dir: ReturnType<typeof tempDir>;
  before(() => (dir = tempDir('aese-cli-usage')));
  after(() => dir?.remove());

  it('prints the usage with every command on --help', async () => {
    const res = await aese(['--help'], {});
    expect(res.code).to.equal(0);
    for (const cmd of ['pki init', 'as onboard', 'as list', 'as suspend', 'policy show', 'policy apply', 'AESE_STATE_DIR', 'AUTHENTICATION_ADDR', 'AESE_EDGE_URL']) {
      expect(res.stdout).to.include(cmd);
    }
  });

  const usageErrors = [
    [[], /missing command/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [['as'], /as needs a subcommand: onboard, list, suspend/],
    [['as', 'list', '--colour'], /Unknown option '--colour'/],
    [['as', 'suspend'], /as suspend needs an scsAsId/],
    [['as', 'onboard', 'as-1', '--out', 'x'], /needs at least one --scope/],
    [
      ['as', 'onboard', 'as-1', '--scope', '3gpp-unknown-api'],
      /unknown scope "3gpp-unknown-api"; the scopes are the served T8 APIs: 3gpp-monitoring-event, 3gpp-as-session-with-qos, /,
    ],
    [['as', 'onboard', 'as-1', '--scope', '3gpp-monitoring-event', '--out', 'x', '--signature-profile', 'sometimes'], /--signature-profile must be one of required, optional/],
  ] as const;
  // The binaries start in parallel (each pays for tsx); each case is still its own test.
  let usageResults: CliResult[] = [];
  before(async function () {
    this.timeout(90_000);
    usageResults = await Promise.all(usageErrors.map(([args]) => aese(args, { AESE_STATE_DIR: join(dir.path, 'state') })));
  });
  usageErrors.forEach(([args, pattern], i) => {
    it(`exits 2 with one line for: aese ${args.join(' ')}`, () => {
      expectOneLineError(usageResults[i], 2, pattern);
    });
  });

  it('tells the operator to run pki init when the state folder has no PKI', async () => {
    const res = await aese(['as', 'list'], { AESE_STATE_DIR: join(dir.path, 'empty') });
    expectOneLineError(res, 1, /no PKI in .*: run 'aese pki init' first/);
  });
});
