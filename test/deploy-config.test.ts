import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import { CLI_SETTINGS, PORT_SETTINGS, START_SETTINGS } from '@aese/cli';
import { COMMON_SETTINGS, DEFAULT_STATE_DIR, portSetting, REPO_ROOT } from '@aese/runtime';

/**
 * The README's configuration tables are the operator's reference, so they are checked against the
 * settings objects the code reads its environment through: every variable read is documented,
 * every documented variable is read, and each documented default is the code's.
 */

interface SettingLike {
  readonly env: string;
  readonly default?: unknown;
}

interface Documented {
  readonly defaultCell: string;
}

function isSettings(value: unknown): value is Record<string, SettingLike> {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.values(value).length > 0 &&
    Object.values(value).every(s => typeof s === 'object' && s !== null && typeof (s as SettingLike).env === 'string')
  );
}

async function codeSettings(): Promise<SettingLike[]> {
  const out: SettingLike[] = [...Object.values(COMMON_SETTINGS), ...Object.values(CLI_SETTINGS), ...Object.values(START_SETTINGS), ...Object.values(PORT_SETTINGS)];
  const services = readdirSync(join(REPO_ROOT, 'services')).filter(d => existsSync(join(REPO_ROOT, 'services', d, 'src', 'server.ts')));
  for (const service of services) {
    const mod = (await import(pathToFileURL(join(REPO_ROOT, 'services', service, 'src', 'server.ts')).href)) as Record<string, unknown>;
    const own = Object.entries(mod).filter(([name, value]) => name.endsWith('_SETTINGS') && isSettings(value));
    // Services without settings of their own still read PORT (through portSetting).
    out.push(...(own.length > 0 ? own.flatMap(([, v]) => Object.values(v as Record<string, SettingLike>)) : [portSetting(0)]));
  }
  return out;
}

/** The variables in the README's "Configuration" section, each with its default cell. */
function documented(): Map<string, Documented> {
  const readme = readFileSync(join(REPO_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('\n## Configuration\n');
  expect(start, 'README has a "## Configuration" section').to.be.greaterThan(-1);
  const rest = readme.slice(start + 1);
  const end = rest.indexOf('\n## ', 1);
  const section = end === -1 ? rest : rest.slice(0, end);
  const out = new Map<string, Documented>();
  for (const line of section.split('\n')) {
    if (!line.startsWith('| `')) continue;
    const cells = line.split('|').map(c => c.trim());
    const names = [...cells[1].matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map(m => m[1]);
    for (const name of names) out.set(name, { defaultCell: cells[2] ?? '' });
  }
  return out;
}

/** How a default is expected to appear in the README's default cell. */
function expectedText(setting: SettingLike): string | undefined {
  if (!('default' in setting)) return 'required';
  const d = setting.default;
  if (d === undefined) return undefined;
  if (d === DEFAULT_STATE_DIR) return '.state';
  if (Array.isArray(d)) return d.length === 0 ? 'empty' : d.join(',');
  if (Buffer.isBuffer(d)) return undefined;
  return typeof d === 'string' || typeof d === 'number' || typeof d === 'boolean' ? String(d) : JSON.stringify(d);
}

describe('deployment: the README configuration reference', () => {
  let settings: SettingLike[];
  let docs: Map<string, Documented>;
  before(async () => {
    settings = await codeSettings();
    docs = documented();
  });

  it('documents every variable the code reads', () => {
    const missing = [...new Set(settings.map(s => s.env))].filter(env => !docs.has(env));
    expect(missing, 'read by the code but not in README.md').to.deep.equal([]);
  });

  it('documents no variable the code does not read', () => {
    const read = new Set(settings.map(s => s.env));
    expect(
      [...docs.keys()].filter(env => !read.has(env)),
      'in README.md but read by nothing',
    ).to.deep.equal([]);
  });

  it("gives each variable the code's default", () => {
    const wrong: string[] = [];
    for (const s of settings) {
      const text = expectedText(s);
      const cell = docs.get(s.env)?.defaultCell ?? '';
      if (text !== undefined && !cell.includes(text)) wrong.push(`${s.env}: README says "${cell}", the code ${text}`);
    }
    expect(wrong).to.deep.equal([]);
  });
});
