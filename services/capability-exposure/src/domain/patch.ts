import { invalidParam } from './problem.js';

/** A JSON Patch operation (RFC 6902), as the MonitoringEvent PATCH body carries them. */
export interface PatchOperation {
  readonly op: string;
  readonly path: string;
  readonly from?: string;
  readonly value?: unknown;
}

const FORBIDDEN_SEGMENTS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function segments(pointer: string, at: string): string[] {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) throw invalidParam(at, 'must be a JSON pointer');
  return pointer
    .slice(1)
    .split('/')
    .map(s => {
      const seg = s.replace(/~1/g, '/').replace(/~0/g, '~');
      if (FORBIDDEN_SEGMENTS.has(seg)) throw invalidParam(at, 'names a member that is not allowed');
      return seg;
    });
}

function own(container: unknown, key: string): boolean {
  return typeof container === 'object' && container !== null && Object.prototype.hasOwnProperty.call(container, key);
}

function parentOf(doc: unknown, segs: string[], at: string): { parent: Record<string, unknown> | unknown[]; key: string } {
  let cur = doc;
  for (const s of segs.slice(0, -1)) {
    if (Array.isArray(cur) && /^(0|[1-9]\d*)$/.test(s) && Number(s) < cur.length) cur = cur[Number(s)];
    else if (isObject(cur) && own(cur, s)) cur = cur[s];
    else throw invalidParam(at, 'points at a member that does not exist');
  }
  if (!Array.isArray(cur) && !isObject(cur)) throw invalidParam(at, 'points into a value that is not a container');
  return { parent: cur, key: segs[segs.length - 1] };
}

function get(doc: unknown, pointer: string, at: string): unknown {
  let cur = doc;
  for (const s of segments(pointer, at)) {
    if (Array.isArray(cur) && /^(0|[1-9]\d*)$/.test(s) && Number(s) < cur.length) cur = cur[Number(s)];
    else if (isObject(cur) && own(cur, s)) cur = cur[s];
    else throw invalidParam(at, 'points at a member that does not exist');
  }
  return cur;
}

function add(doc: unknown, pointer: string, value: unknown, at: string): unknown {
  const segs = segments(pointer, at);
  if (segs.length === 0) return value;
  const { parent, key } = parentOf(doc, segs, at);
  if (Array.isArray(parent)) {
    const i = key === '-' ? parent.length : /^(0|[1-9]\d*)$/.test(key) ? Number(key) : -1;
    if (i < 0 || i > parent.length) throw invalidParam(at, 'is not a valid array index');
    parent.splice(i, 0, value);
  } else {
    Object.defineProperty(parent, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return doc;
}

function remove(doc: unknown, pointer: string, at: string): unknown {
  const segs = segments(pointer, at);
  if (segs.length === 0) throw invalidParam(at, 'cannot remove the whole document');
  const { parent, key } = parentOf(doc, segs, at);
  if (Array.isArray(parent)) {
    const i = /^(0|[1-9]\d*)$/.test(key) ? Number(key) : -1;
    if (i < 0 || i >= parent.length) throw invalidParam(at, 'is not a valid array index');
    parent.splice(i, 1);
  } else {
    if (!own(parent, key)) throw invalidParam(at, 'points at a member that does not exist');
    delete parent[key];
  }
  return doc;
}

/**
 * Applies a JSON Patch (RFC 6902) to a copy of a document. Every operation is atomic with the
 * others: on any failure the caller's document is untouched. Pointers naming prototype members
 * are refused. Failures are 400 T8Problems pointing at the operation, never echoing values.
 */
export function applyJsonPatch(document: unknown, ops: readonly PatchOperation[]): unknown {
  let doc: unknown = structuredClone(document);
  ops.forEach((o, i) => {
    const at = `/${i}/path`;
    switch (o.op) {
      case 'add':
        doc = add(doc, o.path, structuredClone(o.value), at);
        break;
      case 'remove':
        doc = remove(doc, o.path, at);
        break;
      case 'replace':
        get(doc, o.path, at);
        doc = segments(o.path, at).length === 0 ? structuredClone(o.value) : add(remove(doc, o.path, at), o.path, structuredClone(o.value), at);
        break;
      case 'move': {
        if (o.from === undefined) throw invalidParam(`/${i}/from`, 'is required for move');
        if (o.path.startsWith(`${o.from}/`)) throw invalidParam(at, 'cannot move a value into itself');
        const v = get(doc, o.from, `/${i}/from`);
        doc = add(remove(doc, o.from, `/${i}/from`), o.path, v, at);
        break;
      }
      case 'copy': {
        if (o.from === undefined) throw invalidParam(`/${i}/from`, 'is required for copy');
        doc = add(doc, o.path, structuredClone(get(doc, o.from, `/${i}/from`)), at);
        break;
      }
      case 'test':
        if (JSON.stringify(get(doc, o.path, at)) !== JSON.stringify(o.value)) throw invalidParam(at, 'test failed');
        break;
      default:
        throw invalidParam(`/${i}/op`, 'is not a JSON Patch operation');
    }
  });
  return doc;
}

/**
 * Applies a JSON Merge Patch (RFC 7396) to a copy of a document: members set to null are
 * removed, objects merge recursively, anything else replaces.
 */
export function applyMergePatch(target: unknown, patch: unknown): unknown {
  if (!isObject(patch)) return structuredClone(patch);
  const out: Record<string, unknown> = isObject(target) ? structuredClone(target) : {};
  for (const [k, v] of Object.entries(patch)) {
    if (FORBIDDEN_SEGMENTS.has(k)) throw invalidParam(`/${k}`, 'member name not allowed');
    if (v === null) delete out[k];
    else Object.defineProperty(out, k, { value: applyMergePatch(out[k], v), enumerable: true, writable: true, configurable: true });
  }
  return out;
}
