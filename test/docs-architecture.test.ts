import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect } from 'chai';
import ts from 'typescript';
import * as events from '@aese/events';
import { CONTROL_SUBJECTS, controlStreamOf, TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT, TOKEN_REVOCATIONS_SUBJECT } from '@aese/events';
import type { ControlSubject } from '@aese/events';
import { KV_BUCKETS } from '@aese/nats';
import { REPLAY_WINDOW_STREAM, REPLAY_WINDOW_SUBJECT_PREFIX } from '@aese/replay-window';
import { NATS_IDENTITIES, NATS_TRUST_MODEL, natsUserOf } from '@aese/nats-trust';
import type { NatsIdentity } from '@aese/nats-trust';
import { MESH_SERVICES, NATS_ADMIN_NAME, OPERATOR_NAME } from '@aese/pki';
import { DEFAULT_EDGE_PORT, MESH_ENDPOINTS, REPO_ROOT } from '@aese/runtime';

/**
 * docs/architecture.md states facts a platform engineer relies on (ports, who may call which RPC,
 * which key purpose each service may use, who reads and writes which NATS place). Its tables
 * marked `<!-- checked: <name> -->` are compared here with the code they describe, so a change
 * to either without the other fails.
 */

const DOC = join(REPO_ROOT, 'docs', 'architecture.md');
/** How the document names the operator CLI's identity in caller lists. */
const OPERATOR = 'operator';

type Row = Readonly<Record<string, string>>;

/** The rows of the pipe table right after `<!-- checked: name -->`, by header, backticks removed. */
function checkedTable(name: string): Row[] {
  const lines = readFileSync(DOC, 'utf8').split('\n');
  const at = lines.findIndex(l => l.trim() === `<!-- checked: ${name} -->`);
  expect(at, `docs/architecture.md has a table marked "<!-- checked: ${name} -->"`).to.be.greaterThan(-1);
  const table: string[] = [];
  for (const line of lines.slice(at + 1)) {
    if (!line.startsWith('|')) break;
    table.push(line);
  }
  const cells = (line: string): string[] =>
    line
      .trim()
      .replace(/^\||\|$/g, '')
      .split('|')
      .map(c => c.trim().replace(/`/g, ''));
  expect(table.length, `the "${name}" table has a header, a separator and rows`).to.be.greaterThan(2);
  const header = cells(table[0]);
  return table.slice(2).map(line => {
    const values = cells(line);
    expect(values, `a row of the "${name}" table: ${line}`).to.have.length(header.length);
    return Object.fromEntries(header.map((h, i) => [h, values[i]]));
  });
}

/** A comma-separated list cell as a sorted list; `nobody` and `none` are the empty list. */
function listCell(cell: string): string[] {
  if (cell === 'nobody' || cell === 'none') return [];
  return cell
    .split(',')
    .map(s => s.trim())
    .sort();
}

function sorted(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

// ---- Reading the services' wiring (services/<name>/src/server.ts) through the TypeScript AST.

interface Wiring {
  readonly file: ts.SourceFile;
  readonly path: string;
}

function serviceDirs(): string[] {
  return readdirSync(join(REPO_ROOT, 'services'))
    .filter(d => existsSync(join(REPO_ROOT, 'services', d, 'src', 'server.ts')))
    .sort();
}

function wiringOf(service: string): Wiring {
  const path = join(REPO_ROOT, 'services', service, 'src', 'server.ts');
  return { path, file: ts.createSourceFile(path, readFileSync(path, 'utf8'), ts.ScriptTarget.Latest, true) };
}

function nodes(root: ts.Node): ts.Node[] {
  const out: ts.Node[] = [];
  const visit = (n: ts.Node): void => {
    out.push(n);
    ts.forEachChild(n, visit);
  };
  visit(root);
  return out;
}

function calleeName(call: ts.CallExpression | ts.NewExpression): string | undefined {
  return ts.isIdentifier(call.expression) ? call.expression.text : undefined;
}

function property(obj: ts.ObjectLiteralExpression, name: string): ts.Expression | undefined {
  for (const p of obj.properties) {
    if (ts.isPropertyAssignment(p) && propertyName(p.name) === name) return p.initializer;
    if (ts.isShorthandPropertyAssignment(p) && p.name.text === name) return p.name;
  }
  return undefined;
}

function propertyName(name: ts.PropertyName): string {
  if (ts.isIdentifier(name) || ts.isStringLiteral(name)) return name.text;
  throw new Error(`unsupported property name ${name.getText()}`);
}

/** The one initializer of a `const <name> = ...` in the file. */
function declaration(w: Wiring, name: string): ts.Expression {
  const found = nodes(w.file).filter((n): n is ts.VariableDeclaration => ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text === name);
  const inits = sorted(found.map(d => d.initializer?.getText() ?? ''));
  if (found.length === 0 || inits.length !== 1 || !found[0].initializer) throw new Error(`${w.path}: cannot resolve ${name} (update this test to read it)`);
  return found[0].initializer;
}

/** A string literal argument, or a clear failure naming what could not be read. */
function literal(w: Wiring, e: ts.Expression | undefined): string {
  if (e && (ts.isStringLiteral(e) || ts.isNoSubstitutionTemplateLiteral(e))) return e.text;
  throw new Error(`${w.path}: expected a string literal, found ${e?.getText() ?? 'nothing'}`);
}

/**
 * The identities an allow-list expression names: `serviceId(td, 'x')` (or a local wrapper of
 * it) is `x`, `spiffeId(td, 'operator', OPERATOR_NAME)` is `operator`; arrays, spreads and
 * local constants are followed. Anything else fails, so a new way of writing a list is noticed.
 */
function identities(w: Wiring, e: ts.Expression): string[] {
  if (ts.isArrayLiteralExpression(e)) return e.elements.flatMap(el => identities(w, ts.isSpreadElement(el) ? el.expression : el));
  if (ts.isIdentifier(e)) return identities(w, declaration(w, e.text));
  if (ts.isParenthesizedExpression(e) || ts.isAsExpression(e)) return identities(w, e.expression);
  if (ts.isCallExpression(e)) {
    const name = calleeName(e);
    if (name === 'serviceId') return [literal(w, e.arguments[1])];
    if (name === 'spiffeId' && literal(w, e.arguments[1]) === 'operator' && e.arguments[2]?.getText() === 'OPERATOR_NAME') return [OPERATOR];
    if (name !== undefined) {
      // A local wrapper such as `const svc = (name) => serviceId(td, name)`.
      const fn = declaration(w, name);
      if (ts.isArrowFunction(fn) && ts.isCallExpression(fn.body) && calleeName(fn.body) === 'serviceId' && fn.parameters.length === 1) {
        return [literal(w, e.arguments[0])];
      }
    }
  }
  throw new Error(`${w.path}: cannot read the identities of ${e.getText()} (update this test to read it)`);
}

/** A gRPC method as the generated service definition describes it. */
interface MethodDefinition {
  readonly path: string;
  readonly requestStream: boolean;
  readonly responseStream: boolean;
}

interface Mounted {
  readonly grpcService: string;
  /** RPC name (as in the proto) -> allowed identities. */
  readonly allowed: Map<string, string[]>;
}

/** The generated definition a `mount({ definition: X })` names, loaded from the module the file imports it from. */
async function definitionOf(w: Wiring, name: string): Promise<Record<string, MethodDefinition>> {
  for (const n of w.file.statements) {
    if (!ts.isImportDeclaration(n) || !n.importClause?.namedBindings || !ts.isNamedImports(n.importClause.namedBindings)) continue;
    if (!n.importClause.namedBindings.elements.some(el => el.name.text === name)) continue;
    const mod = (await import(literal(w, n.moduleSpecifier))) as Record<string, Record<string, MethodDefinition>>;
    const def = mod[name];
    if (def) return def;
  }
  throw new Error(`${w.path}: cannot find the import of ${name}`);
}

/** Every service mounted in the file, with the allow-list of each of its RPCs (streams under their unary twin's). */
async function mounts(w: Wiring): Promise<Mounted[]> {
  const out: Mounted[] = [];
  for (const n of nodes(w.file)) {
    if (!ts.isCallExpression(n) || calleeName(n) !== 'mount') continue;
    const arg = n.arguments[0];
    if (!arg || !ts.isObjectLiteralExpression(arg)) throw new Error(`${w.path}: mount() without an object literal`);
    const defName = property(arg, 'definition')?.getText();
    const allowedExpr = property(arg, 'allowedCallers');
    if (!defName || !allowedExpr || !ts.isObjectLiteralExpression(allowedExpr)) throw new Error(`${w.path}: mount() without definition and allowedCallers`);
    const byMethod = new Map<string, string[]>();
    for (const p of allowedExpr.properties) {
      if (!ts.isPropertyAssignment(p)) throw new Error(`${w.path}: unsupported allowedCallers entry ${p.getText()}`);
      byMethod.set(propertyName(p.name), sorted(identities(w, p.initializer)));
    }
    const streamsExpr = property(arg, 'streams');
    const streams = new Map<string, string>();
    if (streamsExpr && ts.isObjectLiteralExpression(streamsExpr)) {
      for (const p of streamsExpr.properties) {
        if (!ts.isPropertyAssignment(p)) throw new Error(`${w.path}: unsupported streams entry ${p.getText()}`);
        streams.set(propertyName(p.name), literal(w, p.initializer));
      }
    }
    const def = await definitionOf(w, defName);
    const allowed = new Map<string, string[]>();
    let grpcService = '';
    for (const [method, d] of Object.entries(def)) {
      const [, service, rpc] = d.path.split('/');
      grpcService = service!;
      const unary = d.requestStream || d.responseStream ? streams.get(method) : method;
      // No entry: nobody may call it (the server refuses every caller).
      allowed.set(rpc, unary === undefined ? [] : (byMethod.get(unary) ?? []));
    }
    out.push({ grpcService, allowed });
  }
  return out;
}

function callsCreateMeshServer(w: Wiring): boolean {
  return nodes(w.file).some(n => ts.isCallExpression(n) && calleeName(n) === 'createMeshServer');
}

/** The object literal passed to `new KeyCustody({...})` in crypto's wiring. */
function keyCustodyOptions(w: Wiring): ts.ObjectLiteralExpression {
  const found = nodes(w.file).find((n): n is ts.NewExpression => ts.isNewExpression(n) && calleeName(n) === 'KeyCustody');
  const arg = found?.arguments?.[0];
  if (!arg || !ts.isObjectLiteralExpression(arg)) throw new Error(`${w.path}: cannot find new KeyCustody({...})`);
  return arg;
}

function purposeMap(w: Wiring, e: ts.Expression | undefined): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (e === undefined) return out;
  if (!ts.isObjectLiteralExpression(e)) throw new Error(`${w.path}: expected an object literal, found ${e.getText()}`);
  for (const p of e.properties) {
    if (!ts.isPropertyAssignment(p)) throw new Error(`${w.path}: unsupported entry ${p.getText()}`);
    out.set(propertyName(p.name), sorted(identities(w, p.initializer)));
  }
  return out;
}

// ---- NATS: which places exist and who may write and read each.

/** How an identity is named in the document's NATS columns. */
function docName(identity: NatsIdentity): string {
  return identity === OPERATOR_NAME ? OPERATOR : identity;
}

const kvStream = (bucket: string): string => `KV_${bucket}`;

/**
 * The streams libs/events defines (its `*_STREAM` constants), each with the test a published
 * subject passes when it lands there: the control streams through `controlStreamOf`, the others
 * through their `*_SUBJECT_PREFIX`. A stream that follows neither fails, so it is not missed.
 */
function streamSubjects(): Map<string, (subject: string) => boolean> {
  const exported = events as unknown as Record<string, unknown>;
  const controlSubjects: string[] = [...Object.values(CONTROL_SUBJECTS), TOKEN_REVOCATIONS_SUBJECT, TOKEN_REVOCATIONS_SNAPSHOT_SUBJECT];
  const out = new Map<string, (subject: string) => boolean>();
  for (const [name, stream] of Object.entries(exported)) {
    if (!name.endsWith('_STREAM') || typeof stream !== 'string') continue;
    const prefix = exported[`${name.slice(0, -'_STREAM'.length)}_SUBJECT_PREFIX`];
    if (typeof prefix === 'string') out.set(stream, s => s.startsWith(`${prefix}.`));
    else if (controlSubjects.some(s => controlStreamOf(s as ControlSubject).stream === stream)) {
      out.set(stream, s => controlSubjects.includes(s) && controlStreamOf(s as ControlSubject).stream === stream);
    } else throw new Error(`libs/events exports ${name} without a ${name.slice(0, -'_STREAM'.length)}_SUBJECT_PREFIX (update this test)`);
  }
  // The replay windows' stream lives with its library (libs/replay-window).
  out.set(REPLAY_WINDOW_STREAM, s => s.startsWith(`${REPLAY_WINDOW_SUBJECT_PREFIX}.`));
  return out;
}

/** The stream a published subject (not a KV key) lands in; each subject must land in exactly one. */
function streamOf(streams: Map<string, (subject: string) => boolean>, subject: string): string {
  const found = [...streams].filter(([, lands]) => lands(subject)).map(([stream]) => stream);
  if (found.length !== 1) throw new Error(`NATS_TRUST_MODEL publishes ${subject}, which lands in ${found.length} known streams (update this test)`);
  return found[0];
}

interface PlaceAccess {
  readonly writers: Set<string>;
  readonly readers: Set<string>;
}

/** Per KV bucket and stream, who NATS_TRUST_MODEL lets write and read it (the administrator aside). */
function natsAccess(): Map<string, PlaceAccess> {
  const buckets = Object.values(KV_BUCKETS) as string[];
  const places = new Map<string, PlaceAccess>();
  const at = (place: string): PlaceAccess => {
    let a = places.get(place);
    if (!a) places.set(place, (a = { writers: new Set(), readers: new Set() }));
    return a;
  };
  const streams = streamSubjects();
  for (const b of buckets) at(b);
  for (const s of streams.keys()) at(s);
  for (const identity of NATS_IDENTITIES) {
    const grant = NATS_TRUST_MODEL[identity];
    if (grant.admin) continue;
    for (const subject of grant.publish) {
      const bucket = buckets.find(b => subject === `$KV.${b}.>`);
      at(bucket ?? streamOf(streams, subject)).writers.add(docName(identity));
    }
    for (const stream of grant.read) {
      const bucket = buckets.find(b => stream === kvStream(b));
      if (!bucket && !streams.has(stream)) throw new Error(`NATS_TRUST_MODEL grants a read of ${stream}, an unknown stream (update this test)`);
      at(bucket ?? stream).readers.add(docName(identity));
    }
  }
  return places;
}

describe('docs/architecture.md matches the code', function () {
  // Loading every service's wiring (and its generated gRPC code) once takes a few seconds.
  this.timeout(60_000);

  const services = serviceDirs();
  const wirings = new Map(services.map(s => [s, wiringOf(s)]));

  it('lists every service with its listener, default port, address variable and gRPC service', async () => {
    const rows = checkedTable('services');
    expect(sorted(rows.map(r => r['service'])), 'services in the table').to.deep.equal(sorted(services));
    expect(sorted(services), 'service folders are the PKI mesh services').to.deep.equal(sorted(MESH_SERVICES));
    for (const row of rows) {
      const name = row['service'];
      const w = wirings.get(name)!;
      const grpc = callsCreateMeshServer(w);
      expect(row['gRPC health and reflection'], `${name}: gRPC health and reflection`).to.equal(grpc ? 'yes' : 'no');
      expect(row['listens on'].includes('gRPC'), `${name}: listens on "${row['listens on']}"`).to.equal(grpc);
      const endpoint = (MESH_ENDPOINTS as Record<string, { port: number; addressEnv: string }>)[name];
      expect(row['default port'], `${name}: default port`).to.equal(String(endpoint?.port ?? DEFAULT_EDGE_PORT));
      expect(row['address variable'], `${name}: address variable`).to.equal(endpoint?.addressEnv ?? 'none');
      expect(endpoint !== undefined, `${name}: a mesh endpoint exactly when it serves gRPC`).to.equal(grpc);
      // The port the service really defaults to: its settings' PORT default.
      const mod = (await import(pathToFileURL(w.path).href)) as Record<string, unknown>;
      const settings = Object.entries(mod)
        .filter(([k]) => k.endsWith('_SETTINGS'))
        .map(([, v]) => v as { port?: { default?: unknown } });
      expect(
        settings.map(s => s.port?.default),
        `${name}: the PORT default of its settings`,
      ).to.deep.equal([Number(row['default port'])]);
      const mounted = await mounts(w);
      expect(row['gRPC service'], `${name}: gRPC service`).to.equal(mounted.map(m => m.grpcService).join(', ') || 'none');
    }
  });

  it('states every RPC allow-list as the services wire it', async () => {
    const documented = new Map<string, string[]>();
    for (const row of checkedTable('allow-lists')) {
      const key = `${row['service']} ${row['RPC']}`;
      expect(documented.has(key), `one row per RPC: ${key}`).to.equal(false);
      documented.set(key, listCell(row['callers']));
    }
    const code = new Map<string, string[]>();
    for (const [service, w] of wirings) {
      for (const m of await mounts(w)) for (const [rpc, callers] of m.allowed) code.set(`${service} ${rpc}`, callers);
    }
    expect(sorted(documented.keys()), 'the RPCs in the table are the RPCs served').to.deep.equal(sorted(code.keys()));
    for (const [key, callers] of code) expect(documented.get(key), `callers of ${key}`).to.deep.equal(callers);
  });

  it('states who may have crypto sign with each key purpose, and who gets a delegated key', () => {
    const options = keyCustodyOptions(wirings.get('crypto')!);
    const w = wirings.get('crypto')!;
    const signers = purposeMap(w, property(options, 'signers'));
    const delegates = purposeMap(w, property(options, 'delegates'));
    const rows = checkedTable('key-purposes');
    expect(sorted(rows.map(r => r['key purpose'])), 'key purposes').to.deep.equal(sorted(signers.keys()));
    for (const row of rows) {
      const purpose = row['key purpose'];
      expect(listCell(row['Sign for']), `signers of ${purpose}`).to.deep.equal(signers.get(purpose));
      expect(listCell(row['delegated to']), `delegates of ${purpose}`).to.deep.equal(delegates.get(purpose) ?? []);
    }
  });

  it('names every NATS identity with the SPIFFE ID NATS maps it from', () => {
    const rows = checkedTable('identities');
    const natsRows = rows.filter(r => r['NATS user'] === 'yes');
    const identityOf = (r: Row): string => r['identity'].split(' ')[0];
    expect(sorted(natsRows.map(identityOf)), 'identities marked NATS user').to.deep.equal(sorted(NATS_IDENTITIES));
    for (const row of natsRows) {
      const id = identityOf(row) as NatsIdentity;
      // The document writes the trust domain as <td>.
      expect(row['SPIFFE ID (URI SAN)'], `SPIFFE ID of ${id}`).to.equal(natsUserOf('td.example', id).replace('//td.example/', '//<td>/'));
      expect(row['issued by'], `issuer of ${id}`).to.equal('mesh CA');
    }
    expect(NATS_TRUST_MODEL[NATS_ADMIN_NAME].admin, 'nats-admin is the one administrator').to.equal(true);
  });

  it('states who writes and reads every KV bucket and stream, as NATS_TRUST_MODEL grants it', () => {
    const access = natsAccess();
    const rows = checkedTable('nats-state');
    const placeOf = (r: Row): string => r['NATS place'].split(' ')[0];
    expect(sorted(rows.map(placeOf)), 'NATS places').to.deep.equal(sorted(access.keys()));
    for (const row of rows) {
      const place = placeOf(row);
      const kind = (Object.values(KV_BUCKETS) as string[]).includes(place) ? '(KV)' : '(stream)';
      expect(row['NATS place'], `${place} is marked as a ${kind}`).to.equal(`${place} ${kind}`);
      expect(listCell(row['may write']), `writers of ${place}`).to.deep.equal(sorted(access.get(place)!.writers));
      expect(listCell(row['may read']), `readers of ${place}`).to.deep.equal(sorted(access.get(place)!.readers));
    }
  });
});
