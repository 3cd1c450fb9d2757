import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import { initPki } from '@aese/pki';
import { tempDir } from '@aese/testing';
import { describeFailure, ensureKek, runCli, UsageError } from '@aese/cli';
import type { AsRegistration, AsRegistry, RegisteredAs } from '@aese/cli';
import { formatTable } from '../src/output.js';
import { grantRows, setGrant, withdrawGrants } from '../src/grants.js';
import { T8_SCOPES } from '@aese/t8-catalog';

/** An in-memory registry that records what it was given, or fails as told. */
function fakeRegistry(fail?: AeseError): AsRegistry & { registered: AsRegistration[]; closed: number } {
  const registered: AsRegistration[] = [];
  const self = {
    registered,
    closed: 0,
    register: async (reg: AsRegistration): Promise<RegisteredAs> => {
      if (fail) throw fail;
      registered.push(reg);
      const now = new Date(0).toISOString();
      return {
        scsAsId: reg.scsAsId,
        status: 'active',
        signatureProfile: reg.signatureProfile,
        scopes: reg.scopes,
        certificateThumbprints: reg.certificateThumbprints,
        signingKeys: reg.signingKeys,
        encryptionKey: reg.encryptionKey ?? null,
        createdAt: now,
        updatedAt: now,
      };
    },
    list: async () => [],
    suspend: async () => {
      throw new AeseError('NOT_FOUND', 'no such SCS/AS');
    },
    revoke: async () => {
      throw new AeseError('NOT_FOUND', 'no such SCS/AS');
    },
    close: () => {
      self.closed += 1;
    },
  };
  return self;
}

async function run(argv: string[], env: Record<string, string>, registry: AsRegistry) {
  let stdout = '';
  let stderr = '';
  // No grants in force, and no capability-exposure: onboarding must say so without either.
  const policyAdmin = {
    getPolicies: async () => ({ version: 1, policies: 'x', entitiesJson: '[]', schema: '', appliedAtMs: 0 }),
    applyPolicies: async () => {
      throw new AeseError('INTERNAL', 'not in these tests');
    },
    close: () => undefined,
  };
  const code = await runCli(
    argv,
    { stdout: t => (stdout += t), stderr: t => (stderr += t), env },
    {
      connectRegistry: () => registry,
      connectPolicyAdmin: () => policyAdmin,
      connectCapabilityExposure: () => {
        throw new AeseError('UNAVAILABLE', 'no capability-exposure in these tests');
      },
    },
  );
  return { code, stdout, stderr };
}

describe('@aese/cli (in process)', () => {
  let dir: ReturnType<typeof tempDir>;
  beforeEach(() => (dir = tempDir('aese-cli-unit')));
  afterEach(() => dir.remove());

  it('creates the key-encryption key once and never replaces it', () => {
    const results = Array.from({ length: 3 }, () => ensureKek(dir.path));
    expect(results.map(r => r.created)).to.deep.equal([true, false, false]);
    const kek = readFileSync(join(dir.path, 'crypto-kek'), 'utf8');
    expect(Buffer.from(kek.trim(), 'base64')).to.have.length(32);
    expect(ensureKek(dir.path)).to.deep.equal({ path: join(dir.path, 'crypto-kek'), created: false });
    expect(readFileSync(join(dir.path, 'crypto-kek'), 'utf8')).to.equal(kek);
  });

  it('onboarding registers only public keys and the thumbprint, and closes the connection', async () => {
    await initPki({ stateDir: dir.path, trustDomain: 'scef.test' });
    const registry = fakeRegistry();
    const out = join(dir.path, 'bundle');
    const res = await run(['as', 'onboard', 'as-9', '--scope', '3gpp-as-session-with-qos', '--out', out], { AESE_STATE_DIR: dir.path }, registry);
    expect(res.code, res.stderr).to.equal(0);
    expect(registry.closed).to.equal(1);
    const [reg] = registry.registered;
    expect(reg.certificateThumbprints[0]).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(reg.signingKeys[0]).to.not.have.property('d');
    expect(reg.encryptionKey).to.not.have.property('d');
    expect(reg.signingKeys[0]).to.include({ alg: 'ES256', use: 'sig' });
    expect(reg.encryptionKey).to.include({ alg: 'ECDH-ES+A256KW', use: 'enc' });
    expect(reg.signatureProfile).to.equal('required');
  });

  it('writes nothing when the registry refuses, and reports its code on one line', async () => {
    await initPki({ stateDir: dir.path, trustDomain: 'scef.test' });
    const registry = fakeRegistry(new AeseError('ALREADY_EXISTS', 'the certificate is registered to another AS'));
    const out = join(dir.path, 'bundle');
    const res = await run(['as', 'onboard', 'as-9', '--scope', '3gpp-as-session-with-qos', '--out', out], { AESE_STATE_DIR: dir.path }, registry);
    expect(res.code).to.equal(1);
    expect(res.stderr).to.equal('aese: the certificate is registered to another AS (ALREADY_EXISTS)\n');
    expect(existsSync(out)).to.equal(false);
    expect(registry.closed).to.equal(1);
  });

  it('onboarding says the AS has no grant yet and names the grant command', async () => {
    await initPki({ stateDir: dir.path, trustDomain: 'scef.test' });
    const res = await run(['as', 'onboard', 'as-9', '--scope', '3gpp-monitoring-event', '--out', join(dir.path, 'b')], { AESE_STATE_DIR: dir.path }, fakeRegistry());
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.include('as-9 has no grant yet: every T8 request it makes is refused');
    expect(res.stdout).to.include('aese policy grant as-9 --api 3gpp-monitoring-event --category <category>... --target <kind:value>...');
    expect(res.stdout).not.to.match(/^granted/m);
  });

  it('offers only the served T8 APIs as scopes and refuses the others by name', async () => {
    const help = await run(['--help'], {}, fakeRegistry());
    // The list runs over the lines after its heading, up to the next blank line.
    const after = help.stdout.slice(help.stdout.indexOf('T8 scopes')).split('\n').slice(1);
    const scopes = after
      .slice(
        0,
        after.findIndex(l => l.trim() === ''),
      )
      .join(' ')
      .trim()
      .split(/\s+/);
    expect(scopes).to.deep.equal([...T8_SCOPES]);
    const registry = fakeRegistry();
    const res = await run(['as', 'onboard', 'as-9', '--scope', '3gpp-unknown-api', '--out', join(dir.path, 'b')], { AESE_STATE_DIR: dir.path }, registry);
    expect(res.code).to.equal(2);
    expect(res.stderr).to.equal(`aese: unknown scope "3gpp-unknown-api"; the scopes are the served T8 APIs: ${T8_SCOPES.join(', ')}\n`);
    expect(registry.registered).to.have.length(0);
    expect(existsSync(join(dir.path, 'b'))).to.equal(false);
  });

  it('policy grant refuses a malformed grant as a usage error (exit 2)', async () => {
    await initPki({ stateDir: dir.path, trustDomain: 'scef.test' });
    const bad: [string[], RegExp][] = [
      [['--api', '3gpp-unknown-api', '--category', 'x', '--any-target'], /unknown API "3gpp-unknown-api"; served: 3gpp-monitoring-event/],
      [['--api', '3gpp-monitoring-event', '--category', 'location'], /--target <kind:value>\.\.\. or --any-target/],
      [['--api', '3gpp-monitoring-event', '--category', 'location', '--any-target', '--target', 'msisdn:123456'], /not both/],
      [['--api', '3gpp-monitoring-event', '--category', 'location', '--target', 'imsi:001010000000001'], /<kind>:<value> with kind externalId, msisdn, externalGroupId/],
      [['--api', '3gpp-monitoring-event', '--category', 'location', '--target', 'msisdn:+33610000001'], /--target an msisdn is 5 to 15 digits/],
      [['--api', '3gpp-monitoring-event', '--category', 'location', '--target', 'externalId:ue1@scef.test '], /--target an externalId is <local>@<domain>/],
      [['--api', '3gpp-monitoring-event', '--category', 'location', '--any-target', '--operation', 'erase'], /--operation must be one of/],
      [['--api', '3gpp-monitoring-event', '--category', 'location', '--any-target', '--encrypt', 'roaming'], /--encrypt names roaming, which --category does not grant/],
      [['--api', '3gpp-monitoring-event', '--category', 'location', '--any-target', '--location-granularity', 'street'], /exact, cell, ta/],
      [['--api', '3gpp-monitoring-event', '--category', 'location', '--any-target', '--rate-limit', '0'], /--rate-limit/],
    ];
    for (const [args, pattern] of bad) {
      const res = await run(['policy', 'grant', 'as-9', ...args], { AESE_STATE_DIR: dir.path }, fakeRegistry());
      expect(res.code, args.join(' ')).to.equal(2);
      expect(res.stderr).to.match(pattern);
    }
  });

  it('edits grants: adds or replaces one API, withdraws one or all, keeps everything else', () => {
    const other = {
      uid: { type: 'Aese::Application', id: 'other' },
      attrs: {},
      parents: [],
      tags: { '3gpp-as-session-with-qos': { operations: ['read'], categories: ['qos'], targets: [], anyTarget: true } },
    };
    const start = JSON.stringify([other]);
    const grant = {
      operations: ['read'],
      categories: ['location'],
      targets: ['msisdn:33610000001'],
      anyTarget: false,
      encryptCategories: ['location'],
      locationGranularity: 'ta' as const,
    };
    const one = setGrant(start, 'as-9', '3gpp-monitoring-event', grant, 5);
    const parsed = JSON.parse(one) as { uid: { id: string }; attrs: Record<string, unknown>; tags: Record<string, unknown> }[];
    expect(parsed[0]).to.deep.equal(other);
    expect(parsed[1].attrs).to.deep.equal({ rateLimitPerSecond: 5 });
    expect(parsed[1].tags).to.deep.equal({
      '3gpp-monitoring-event': {
        operations: ['read'],
        categories: ['location'],
        targets: ['msisdn:33610000001'],
        anyTarget: false,
        encryptCategories: ['location'],
        locationGranularity: 'ta',
      },
    });
    const two = setGrant(one, 'as-9', '3gpp-as-session-with-qos', { operations: ['create'], categories: ['qos'], targets: [], anyTarget: true });
    const replaced = setGrant(two, 'as-9', '3gpp-monitoring-event', { ...grant, operations: ['create'] });
    expect(grantRows(replaced, 'as-9').map(r => `${r.api}:${r.operations}`)).to.deep.equal(['3gpp-as-session-with-qos:create', '3gpp-monitoring-event:create']);
    const withdrawn = withdrawGrants(replaced, 'as-9', '3gpp-as-session-with-qos');
    expect(withdrawn.removed).to.deep.equal(['3gpp-as-session-with-qos']);
    expect(grantRows(withdrawn.entitiesJson, 'as-9').map(r => r.api)).to.deep.equal(['3gpp-monitoring-event']);
    const all = withdrawGrants(replaced, 'as-9');
    expect(all.removed).to.deep.equal(['3gpp-as-session-with-qos', '3gpp-monitoring-event']);
    expect(grantRows(all.entitiesJson, 'as-9')).to.deep.equal([]);
    expect(grantRows(all.entitiesJson, 'other')).to.have.length(1);
    expect(withdrawGrants(start, 'as-9').removed).to.deep.equal([]);
  });

  it('refuses an edge URL that is not https', async () => {
    const res = await run(['as', 'list'], { AESE_STATE_DIR: dir.path, AESE_EDGE_URL: 'http://localhost:8443' }, fakeRegistry());
    expect(res.code).to.equal(2);
    expect(res.stderr).to.equal('aese: setting AESE_EDGE_URL must be an https URL\n');
  });

  it('describes any failure on one line, usage errors without a code', () => {
    expect(describeFailure(new UsageError('bad flag'))).to.equal('bad flag');
    expect(describeFailure(new AeseError('UNAVAILABLE', 'down\n  because\r\nreasons'))).to.equal('down because reasons (UNAVAILABLE)');
    expect(describeFailure(new Error(''))).to.equal('unknown error');
    expect(describeFailure('text')).to.equal('text');
  });

  it('formats tables with aligned columns and no trailing spaces', () => {
    expect(
      formatTable(
        ['A', 'LONGER'],
        [
          ['x', ''],
          ['yyyy', 'z'],
        ],
      ),
    ).to.equal('A     LONGER\nx\nyyyy  z\n');
  });
});
