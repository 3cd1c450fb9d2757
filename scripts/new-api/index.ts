/**
 * Scaffolds a T8 API module from its official OpenAPI file:
 *
 *   npm run new-api -- TS29122_ChargeableParty.yaml [--category <name>]
 *
 * It reads the file's base path, version, resource collection, item operations, patch media type
 * and notification schema, and writes a module on the toolkit's resource lifecycle
 * (services/capability-exposure/src/modules/<key>/index.ts, its network side in network.ts) and its test
 * (services/capability-exposure/test/api-<key>.test.ts), then registers the module and serves
 * its scope. The module validates, authorizes and stores; what the API does in the network is
 * the part to write next (docs/adding-a-t8-api.md).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { parse } from 'yaml';
import { REPO_ROOT } from '@aese/runtime';
import { loadT8Schemas, OPENAPI_DIR, T8_API_FILES } from '@aese/t8-openapi';
import type { T8ApiFile } from '@aese/t8-openapi';
import { sample } from './sample.ts';
import { moduleSource, networkSource, testSource } from './templates.ts';
import type { ApiShape } from './templates.ts';

type Doc = Record<string, unknown>;

/** The object at a path of keys in a parsed YAML document, or undefined. */
function at(doc: unknown, ...keys: string[]): Doc | undefined {
  let v: unknown = doc;
  for (const k of keys) v = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Doc)[k] : undefined;
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Doc) : undefined;
}

const escapePointer = (s: string): string => s.replace(/~/g, '~0').replace(/\//g, '~1');

/** The schema name of a local `$ref`, or a JSON pointer to the schema in the file. */
function schemaRef(schema: Doc | undefined, pointer: string): string {
  const ref = schema?.['$ref'];
  if (typeof ref === 'string' && ref.startsWith('#/components/schemas/')) return ref.slice('#/components/schemas/'.length);
  return `#${pointer}`;
}

/** What the scaffold needs to know of an API file. */
export function shapeOf(key: T8ApiFile, doc: Doc, category: string): ApiShape {
  const servers = doc['servers'];
  const url = Array.isArray(servers) ? at(servers[0])?.['url'] : undefined;
  const server = typeof url === 'string' ? url : '';
  const base = /\{apiRoot\}\/([a-z0-9-]+)\/(v[0-9]+)/.exec(server);
  if (!base) throw new Error(`${T8_API_FILES[key]}: no {apiRoot}/<name>/<version> server URL`);
  const paths = at(doc, 'paths') ?? {};
  const collection = Object.keys(paths).find(p => /^\/\{scsAsId\}\/[A-Za-z-]+$/.test(p) && at(paths, p, 'post'));
  if (!collection) throw new Error(`${T8_API_FILES[key]}: no /{scsAsId}/<collection> with POST (write this module by hand)`);
  const itemPath = Object.keys(paths).find(p => p.startsWith(`${collection}/{`) && /^\{[A-Za-z]+\}$/.test(p.slice(collection.length + 1)));
  if (!itemPath) throw new Error(`${T8_API_FILES[key]}: no item path below ${collection}`);
  const cp = `/paths/${escapePointer(collection)}`;
  const ip = `/paths/${escapePointer(itemPath)}`;
  const resource = schemaRef(at(paths, collection, 'post', 'requestBody', 'content', 'application/json', 'schema'), `${cp}/post/requestBody/content/application~1json/schema`);
  let patch: ApiShape['patch'];
  const patchContent = at(paths, itemPath, 'patch', 'requestBody', 'content');
  const media = patchContent ? Object.keys(patchContent)[0] : undefined;
  const kind = media === 'application/merge-patch+json' ? 'merge-patch' : media === 'application/json-patch+json' ? 'json-patch' : undefined;
  if (media && kind) {
    const schema = schemaRef(at(patchContent, media, 'schema'), `${ip}/patch/requestBody/content/${escapePointer(media)}/schema`);
    patch = { kind, schema, answer: at(paths, itemPath, 'patch', 'responses', '200') ? 200 : 204 };
  }
  let notification: string | undefined;
  const callbacks = at(paths, collection, 'post', 'callbacks');
  const callback = callbacks ? Object.keys(callbacks)[0] : undefined;
  const expression = callback ? Object.keys(at(callbacks, callback) ?? {})[0] : undefined;
  if (callback && expression) {
    const schema = at(callbacks, callback, expression, 'post', 'requestBody', 'content', 'application/json', 'schema');
    if (schema) notification = schemaRef(schema, `${cp}/post/callbacks/${escapePointer(callback)}/${escapePointer(expression)}/post/requestBody/content/application~1json/schema`);
  }
  const list = at(paths, collection, 'get') ? `#${cp}/get/responses/200/content/application~1json/schema` : undefined;
  return {
    key,
    file: T8_API_FILES[key],
    title: typeof at(doc, 'info')?.['title'] === 'string' ? (at(doc, 'info')!['title'] as string) : key,
    name: base[1],
    version: base[2],
    collection,
    idParam: itemPath.slice(collection.length + 2, -1),
    resource,
    list,
    replace: Boolean(at(paths, itemPath, 'put')),
    remove: Boolean(at(paths, itemPath, 'delete')),
    patch,
    notification,
    category,
  };
}

/** Adds an import among the module imports, in the order of their paths (as the linter wants). */
function insertImport(file: string, line: string): void {
  const text = readFileSync(file, 'utf8');
  if (text.includes(line)) return;
  const lines = text.split('\n');
  const imports = lines.map((l, i) => ({ l, i })).filter(x => /^import .* from '\.\/[a-z0-9-]+\/index\.js';$/.test(x.l));
  if (imports.length === 0) throw new Error(`${file}: no module imports to add ${line} to`);
  const pathOf = (l: string): string => l.slice(l.indexOf("from '"));
  const after = imports.filter(x => pathOf(x.l) < pathOf(line)).pop();
  lines.splice(after ? after.i + 1 : imports[0].i, 0, line);
  writeFileSync(file, lines.join('\n'));
}

async function main(argv: readonly string[]): Promise<void> {
  const fileArg = argv.find(a => !a.startsWith('--'));
  const categoryAt = argv.indexOf('--category');
  if (!fileArg) throw new Error('usage: npm run new-api -- <TS29122_Xxx.yaml> [--category <data category>]');
  const fileName = basename(fileArg);
  const key = (Object.keys(T8_API_FILES) as T8ApiFile[]).find(k => T8_API_FILES[k] === fileName);
  if (!key) throw new Error(`${fileName} is not in libs/t8-openapi/src/files.ts (T8_API_FILES): add it, run npm run openapi:gen, then run this again`);
  const doc = parse(readFileSync(join(OPENAPI_DIR, fileName), 'utf8')) as Doc;
  const category = categoryAt >= 0 ? argv[categoryAt + 1] : key.replace(/-/g, '');
  if (!category || !/^[a-z0-9-]+$/.test(category)) throw new Error('--category must be a name [a-z0-9-]');
  const shape = shapeOf(key, doc, category);

  const moduleDir = join(REPO_ROOT, 'services/capability-exposure/src/modules', key);
  const testFile = join(REPO_ROOT, 'services/capability-exposure/test', `api-${key}.test.ts`);
  if (existsSync(moduleDir) || existsSync(testFile)) throw new Error(`${moduleDir} or ${testFile} exists already`);

  // The test's body: the resource's required members, checked against the official schema.
  const deref = (await SwaggerParser.dereference(join(OPENAPI_DIR, fileName))) as Doc;
  const resourceSchema = shape.resource.startsWith('#') ? undefined : at(deref, 'components', 'schemas', shape.resource);
  const body = sample(resourceSchema) as Record<string, unknown> | undefined;
  const schemas = await loadT8Schemas();
  const valid = schemas.validator(key, shape.resource, 'request');
  const ok = body !== undefined && valid(body);

  mkdirSync(moduleDir, { recursive: true });
  const hasDestination = Boolean(at(resourceSchema, 'properties', 'notificationDestination'));
  writeFileSync(join(moduleDir, 'index.ts'), moduleSource(shape, hasDestination));
  writeFileSync(join(moduleDir, 'network.ts'), networkSource(shape));
  writeFileSync(testFile, testSource(shape, body ?? {}));
  const modulesIndex = join(REPO_ROOT, 'services/capability-exposure/src/modules/index.ts');
  const exportName = `${shape.key.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase())}Module`;
  insertImport(modulesIndex, `import { ${exportName} } from './${key}/index.js';`);
  const text = readFileSync(modulesIndex, 'utf8');
  if (!new RegExp(`BUILTIN_MODULES[^;]*\\b${exportName}\\b`).test(text))
    writeFileSync(
      modulesIndex,
      text.replace(
        /(export const BUILTIN_MODULES: readonly ModuleDefinition\[\] = \[)([^\]]*)\]/,
        (_, head: string, list: string) => `${head}${list.replace(/,?\s*$/, '')}, ${exportName}]`,
      ),
    );
  const catalog = join(REPO_ROOT, 'libs/t8-catalog/src/index.ts');
  const served = readFileSync(catalog, 'utf8');
  const servedList = /export const SERVED_T8_APIS = \[([^\]]*)\]/.exec(served)?.[1] ?? '';
  if (!servedList.includes(`'${shape.name}'`)) {
    writeFileSync(
      catalog,
      served.replace(
        /(export const SERVED_T8_APIS = \[[^\]]*?)(\n?\] as const satisfies)/,
        (_, list: string, end: string) => `${list.replace(/,?\s*$/, '')}, '${shape.name}'${end}`,
      ),
    );
  }

  process.stdout.write(
    [
      `wrote services/capability-exposure/src/modules/${key}/index.ts (${moduleSource(shape, hasDestination).split('\n').length} lines) and network.ts`,
      `wrote services/capability-exposure/test/api-${key}.test.ts`,
      `registered ${exportName} in src/modules/index.ts and ${shape.name} in SERVED_T8_APIS`,
      ok ? 'the test body validates against the official schema' : `the test body needs a hand: ${JSON.stringify(valid.violations())}`,
      'next: npx prettier --write the new files; npx mocha the test; then write what the API does in the network in network.ts (docs/adding-a-t8-api.md)',
      '',
    ].join('\n'),
  );
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`new-api: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  });
}
