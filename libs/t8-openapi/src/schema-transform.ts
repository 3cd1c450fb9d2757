/**
 * Turns a bundled OpenAPI 3.0 document, as loaded in memory (the files on disk are never
 * edited), into something a JSON Schema 2019-09 validator reads with OpenAPI 3.0 meaning:
 *
 * 1. `$ref` siblings are dropped. OpenAPI 3.0 says a Reference Object's other members are
 *    ignored; JSON Schema 2019-09 would apply them (TS29122_AsSessionWithQoS.yaml has a
 *    `rTLatencyInd` whose YAML folded `periodInfo`'s `$ref` into it, which would otherwise make
 *    the member unsatisfiable).
 * 2. `nullable: true` without a `type` becomes `anyOf: [<schema>, {type: null}]` (ajv's own
 *    `nullable` support needs a sibling `type`). With a `type`, ajv handles `nullable` itself.
 * 3. When `closed` is set, every object schema that declares `properties` (or composes them
 *    with allOf/anyOf/oneOf) and says nothing about extra members gets
 *    `unevaluatedProperties: false`, except schemas that are themselves branches of a
 *    composition (closing a branch would reject members its siblings define). This is the
 *    SCEF's reading of "unknown fields are rejected": the 3GPP schemas leave objects open, but
 *    a member the SCEF does not know is never silently accepted.
 */
export interface TransformStats {
  readonly refSiblingsDropped: number;
  readonly nullableWrapped: number;
  readonly objectsClosed: number;
}

type Node = Record<string, unknown>;
const COMPOSITIONS = ['allOf', 'anyOf', 'oneOf'] as const;

function isNode(v: unknown): v is Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Resolves a local JSON pointer (`#/a/b`) in a document. */
export function resolvePointer(doc: unknown, ref: string): unknown {
  if (!ref.startsWith('#')) throw new TypeError(`only local references are supported, got ${ref}`);
  let cur: unknown = doc;
  for (const raw of ref.slice(1).split('/').slice(1)) {
    const part = decodeURIComponent(raw).replace(/~1/g, '/').replace(/~0/g, '~');
    if (!isNode(cur) && !Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

function visit(node: unknown, fn: (n: Node) => void, seen = new Set<unknown>()): void {
  if (typeof node !== 'object' || node === null || seen.has(node)) return;
  seen.add(node);
  if (Array.isArray(node)) {
    for (const item of node) visit(item, fn, seen);
    return;
  }
  fn(node as Node);
  for (const v of Object.values(node)) visit(v, fn, seen);
}

/** Applies the transforms described above to a bundled document, in place; returns counts. */
export function toJsonSchemaSemantics(doc: Node, options: { closed: boolean }): TransformStats {
  let refSiblingsDropped = 0;
  let nullableWrapped = 0;
  let objectsClosed = 0;
  visit(doc, n => {
    if (typeof n['$ref'] === 'string' && Object.keys(n).length > 1) {
      for (const k of Object.keys(n)) if (k !== '$ref') delete n[k];
      refSiblingsDropped++;
    }
  });
  visit(doc, n => {
    if (n['nullable'] === true && n['type'] === undefined) {
      const inner: Node = { ...n };
      delete inner['nullable'];
      for (const k of Object.keys(n)) delete n[k];
      n['anyOf'] = [inner, { type: 'null' }];
      nullableWrapped++;
    }
  });
  if (options.closed) {
    const branches = new Set<unknown>();
    visit(doc, n => {
      for (const c of COMPOSITIONS) {
        const list = n[c];
        if (!Array.isArray(list)) continue;
        for (const b of list) {
          branches.add(b);
          if (isNode(b) && typeof b['$ref'] === 'string') branches.add(resolvePointer(doc, b['$ref']));
        }
      }
    });
    visit(doc, n => {
      if (branches.has(n)) return;
      if ('additionalProperties' in n || 'unevaluatedProperties' in n) return;
      const declares = isNode(n['properties']) || COMPOSITIONS.some(c => Array.isArray(n[c]) && n['type'] === 'object');
      if (!declares) return;
      n['unevaluatedProperties'] = false;
      objectsClosed++;
    });
  }
  return { refSiblingsDropped, nullableWrapped, objectsClosed };
}
