import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import { initPki } from '@aese/pki';
import { tempDir } from '@aese/testing';
import { describeFailure, ensureKek, runCli, UsageError } from '@aese/cli';
import type { AsRegistration, AsRegistry, RegisteredAs } from '@aese/cli';
import { formatTable } from '../src/output.js';

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
  const code = await runCli(argv, { stdout: t => (stdout += t), stderr: t => (stderr += t), env }, { connectRegistry: () => registry });
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
    const res = await run(['as', 'onboard', 'as-9', '--scope', '3gpp-nidd', '--out', out], { AESE_STATE_DIR: dir.path }, registry);
    expect(res.code, res.stderr).to.equal(0);
    expect(registry.closed).to.equal(1);
    const [reg] = registry.registered;
    expect(reg!.certificateThumbprints[0]).to.match(/^[A-Za-z0-9_-]{43}$/);
    expect(reg!.signingKeys[0]).to.not.have.property('d');
    expect(reg!.encryptionKey).to.not.have.property('d');
    expect(reg!.signingKeys[0]).to.include({ alg: 'ES256', use: 'sig' });
    expect(reg!.encryptionKey).to.include({ alg: 'ECDH-ES+A256KW', use: 'enc' });
    expect(reg!.signatureProfile).to.equal('required');
  });

  it('writes nothing when the registry refuses, and reports its code on one line', async () => {
    await initPki({ stateDir: dir.path, trustDomain: 'scef.test' });
    const registry = fakeRegistry(new AeseError('ALREADY_EXISTS', 'the certificate is registered to another AS'));
    const out = join(dir.path, 'bundle');
    const res = await run(['as', 'onboard', 'as-9', '--scope', '3gpp-nidd', '--out', out], { AESE_STATE_DIR: dir.path }, registry);
    expect(res.code).to.equal(1);
    expect(res.stderr).to.equal('aese: the certificate is registered to another AS (ALREADY_EXISTS)\n');
    expect(existsSync(out)).to.equal(false);
    expect(registry.closed).to.equal(1);
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
    expect(formatTable(['A', 'LONGER'], [['x', ''], ['yyyy', 'z']])).to.equal('A     LONGER\nx\nyyyy  z\n');
  });
});
