import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { OPENAPI_DIR } from '../src/files.ts';
import { GEN_DIR, renderTypes } from '../scripts/generate.ts';

const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
/** The shared folder the files were copied from sits beside the repository. */
const SHARED_OPENAPI = join(REPO_ROOT, '..', 'shared', '3gpp-openapi');

const vendored = (): string[] =>
  readdirSync(OPENAPI_DIR)
    .filter(f => f !== 'SHA256SUMS')
    .sort();
const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

function checkManifest(): void {
  const lines = readFileSync(join(OPENAPI_DIR, 'SHA256SUMS'), 'utf8').trim().split('\n');
  const manifest = new Map(
    lines.map(l => {
      const [hash, name] = l.split(/\s+/, 2) as [string, string];
      return [name, hash];
    }),
  );
  expect([...manifest.keys()].sort()).to.deep.equal(vendored());
  for (const [name, hash] of manifest) expect(sha256(join(OPENAPI_DIR, name)), name).to.equal(hash);
}

describe('t8-openapi vendored 3GPP files', () => {
  it('holds the 101 YAML files and the README', () => {
    const files = vendored();
    expect(files.filter(f => f.endsWith('.yaml'))).to.have.length(101);
    expect(files).to.include('README.md');
    expect(files).to.have.length(102);
  });

  it('is byte-identical to ../shared/3gpp-openapi when that folder is beside the repo, else to the manifest', () => {
    if (!existsSync(SHARED_OPENAPI)) {
      // No upstream copy here: the committed manifest is the reference (checked file by file).
      checkManifest();
      return;
    }
    const upstream = readdirSync(SHARED_OPENAPI).sort();
    expect(vendored()).to.deep.equal(upstream);
    for (const f of upstream) {
      const a = readFileSync(join(OPENAPI_DIR, f));
      const b = readFileSync(join(SHARED_OPENAPI, f));
      expect(a.equals(b), `${f} differs from the shared copy`).to.equal(true);
    }
  });

  it('matches the committed SHA-256 manifest openapi/SHA256SUMS', () => checkManifest());

  it('a changed byte is caught by the manifest check (positive control of the hash comparison)', () => {
    const bytes = readFileSync(join(OPENAPI_DIR, 'TS29122_MonitoringEvent.yaml'));
    const flipped = Buffer.from(bytes);
    flipped[10] = flipped[10] ^ 0x01;
    expect(createHash('sha256').update(flipped).digest('hex')).to.not.equal(sha256(join(OPENAPI_DIR, 'TS29122_MonitoringEvent.yaml')));
  });

  it('generated types are reproducible: regenerating gives the committed bytes', async function () {
    this.timeout(60_000);
    for (const api of ['monitoring-event', 'as-session-with-qos', 'common-data'] as const) {
      const committed = readFileSync(new URL(`${api}.ts`, GEN_DIR), 'utf8');
      expect(await renderTypes(api), `src/gen/${api}.ts is stale: run npm run openapi:gen`).to.equal(committed);
    }
  });
});
