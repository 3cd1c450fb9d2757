/**
 * `npm run build`: the production build. Each service, the `aese` CLI and the health probe become
 * one ES module each (esbuild, platform node, target node20) that plain `node` runs:
 *
 *   dist/<service>/main.mjs   a mesh service (crypto, authentication, ..., edge)
 *   dist/cli/main.mjs         the operator CLI
 *   dist/health-probe.mjs     `node dist/health-probe.mjs <service>`: exit 0 only when SERVING
 *                             (it loads dist/health-probe/main.mjs)
 *
 * The workspace code (@aese/*, TypeScript) is bundled; third-party packages stay external and are
 * loaded from node_modules, which must hold only production dependencies: a bundle that imports a
 * devDependency (or an undeclared package) fails the build. Files the code reads next to its
 * sources (`new URL('<path>', import.meta.url)`: the .proto files, the Cedar policies, the 3GPP
 * OpenAPI files) are copied beside the bundle under `assets/` and the URL is rewritten to them,
 * so a bundle's folder is all it needs besides node_modules; the repository root itself
 * (`REPO_ROOT`) becomes the folder that holds dist/.
 *
 * Options: `--out <dir>` (default: dist/ in the repository; a folder elsewhere gets a
 * `node_modules` link to the repository's).
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build as esbuild } from 'esbuild';
import type { Plugin } from 'esbuild';
import { DEFAULT_BUILD_DIR, START_ORDER } from '@aese/cli';
import { REPO_ROOT } from '@aese/runtime';

/** What is built: entry source (relative to the repository) and output file (relative to the build folder). */
export const BUILD_ENTRIES: readonly { readonly entry: string; readonly out: string }[] = [
  ...START_ORDER.map(service => ({ entry: `services/${service}/src/main.ts`, out: `${service}/main.mjs` })),
  { entry: 'libs/cli/src/main.ts', out: 'cli/main.mjs' },
  { entry: 'scripts/health-probe.ts', out: 'health-probe/main.mjs' },
];

/** The health probe's command, in the build folder: `node <build>/health-probe.mjs <service>`. */
export const PROBE_LAUNCHER = 'health-probe.mjs';

const ROOT = resolve(REPO_ROOT);
const ASSET_URL = /new URL\((['"])([^'"]+)\1,\s*import\.meta\.url\)/g;

/** The package name of a bare import (`@scope/name/sub` -> `@scope/name`). */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The packages `npm ci --omit=dev` installs: the root's and every workspace's dependencies. */
function productionDependencies(): Set<string> {
  const read = (dir: string): string[] => {
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> };
    return Object.keys(pkg.dependencies ?? {});
  };
  const workspaces = ['libs', 'services'].flatMap(group =>
    readdirSync(join(ROOT, group), { withFileTypes: true })
      .filter(d => d.isDirectory() && existsSync(join(ROOT, group, d.name, 'package.json')))
      .map(d => join(ROOT, group, d.name)),
  );
  return new Set([ROOT, ...workspaces].flatMap(read));
}

/**
 * Keeps third-party packages external (node resolves them from node_modules at run time) and
 * refuses any that `npm ci --omit=dev` would not install.
 */
function externalPackages(allowed: Set<string>, refused: Set<string>): Plugin {
  const builtins = new Set(builtinModules);
  return {
    name: 'external-packages',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, args => {
        if (args.path.startsWith('@aese/')) return undefined;
        if (args.path.startsWith('node:') || builtins.has(args.path)) return { path: args.path, external: true };
        const name = packageOf(args.path);
        if (!allowed.has(name)) refused.add(name);
        return { path: args.path, external: true };
      });
    },
  };
}

/**
 * Rewrites `new URL('<path>', import.meta.url)` in workspace sources to point next to the bundle:
 * the repository root to the folder holding the build folder, anything else to a copy under
 * `<bundle folder>/assets/<path in the repository>`.
 */
function bundledAssets(outFile: string, buildDir: string): Plugin {
  const outDir = dirname(outFile);
  const copied = new Set<string>();
  const urlFrom = (target: string, trailingSlash: boolean): string => {
    let rel = relative(outDir, target).split(sep).join('/');
    rel = rel === '' ? '.' : rel.startsWith('.') ? rel : `./${rel}`;
    return trailingSlash && !rel.endsWith('/') ? `${rel}/` : rel;
  };
  return {
    name: 'bundled-assets',
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, args => {
        if (!args.path.startsWith(ROOT + sep) || args.path.includes(`${sep}node_modules${sep}`)) return undefined;
        const source = readFileSync(args.path, 'utf8');
        if (!source.includes('import.meta.url')) return undefined;
        const contents = source.replace(ASSET_URL, (_whole, quote: string, path: string) => {
          const target = resolve(dirname(args.path), path);
          const slash = path.endsWith('/');
          // The root the code names (REPO_ROOT): the folder the build folder sits in.
          if (target === ROOT) return `new URL(${quote}${urlFrom(resolve(buildDir, '..'), slash)}${quote}, import.meta.url)`;
          if (!target.startsWith(ROOT + sep)) throw new Error(`${relative(ROOT, args.path)}: ${path} points outside the repository`);
          const copy = join(outDir, 'assets', relative(ROOT, target));
          if (!copied.has(copy)) {
            statSync(target); // a missing asset fails the build, not the service at run time
            cpSync(target, copy, { recursive: true });
            copied.add(copy);
          }
          return `new URL(${quote}${urlFrom(copy, slash)}${quote}, import.meta.url)`;
        });
        // Anything else relative to the source file would point nowhere once bundled ("am I the
        // main module" comparisons stay true of the bundle).
        if (/import\.meta\.url(?!\s*===)/.test(contents.replace(ASSET_URL, ''))) {
          throw new Error(`${relative(ROOT, args.path)} uses import.meta.url in a form the build cannot relocate: use new URL('<path>', import.meta.url)`);
        }
        return contents === source ? undefined : { contents, loader: 'ts' };
      });
    },
  };
}

export interface BuildResult {
  readonly outDir: string;
  readonly files: readonly string[];
  readonly ms: number;
}

/** Builds every entry into `outDir` (emptied first). */
export async function buildAll(outDir: string = DEFAULT_BUILD_DIR): Promise<BuildResult> {
  const t0 = Date.now();
  const dir = resolve(outDir);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const allowed = productionDependencies();
  const refused = new Set<string>();
  await Promise.all(
    BUILD_ENTRIES.map(({ entry, out }) => {
      const outfile = join(dir, out);
      return esbuild({
        entryPoints: [join(ROOT, entry)],
        outfile,
        bundle: true,
        format: 'esm',
        platform: 'node',
        target: 'node20',
        sourcemap: 'linked',
        logLevel: 'warning',
        tsconfig: join(ROOT, 'tsconfig.json'),
        plugins: [externalPackages(allowed, refused), bundledAssets(outfile, dir)],
      });
    }),
  );
  // The probe's command stays short and does not name the bundle's folder.
  writeFileSync(join(dir, PROBE_LAUNCHER), `// node ${PROBE_LAUNCHER} <service>: scripts/health-probe.ts\nimport './health-probe/main.mjs';\n`);
  // Node finds packages in a node_modules folder above the importing file: a build outside the
  // repository gets a link to the repository's.
  if (relative(ROOT, dir).startsWith('..')) symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'), 'dir');
  if (refused.size > 0) {
    throw new Error(`the build imports packages that are not production dependencies in package.json: ${[...refused].sort().join(', ')}`);
  }
  return { outDir: dir, files: [...BUILD_ENTRIES.map(e => join(dir, e.out)), join(dir, PROBE_LAUNCHER)], ms: Date.now() - t0 };
}

function parseOut(argv: readonly string[]): string {
  const i = argv.indexOf('--out');
  if (i === -1) return DEFAULT_BUILD_DIR;
  const value = argv[i + 1];
  if (!value) throw new Error('--out needs a folder');
  return value;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  buildAll(parseOut(process.argv.slice(2))).then(
    r => process.stdout.write(`build | ${r.files.length} bundles in ${relative(process.cwd(), r.outDir) || '.'} in ${r.ms} ms\n`),
    (err: unknown) => {
      process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
