import { join } from 'node:path';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2019 } from 'ajv/dist/2019.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2019.js';
import addFormatsModule from 'ajv-formats';
import { OPENAPI_DIR, T8_API_FILES } from './files.js';
import type { T8ApiFile } from './files.js';
import { resolvePointer, toJsonSchemaSemantics } from './schema-transform.js';
import type { TransformStats } from './schema-transform.js';

// ajv-formats is CommonJS with a default export; under NodeNext the plugin may sit on `.default`.
type AddFormats = (ajv: Ajv2019) => unknown;
const formatsPlugin = addFormatsModule as unknown as AddFormats & { default?: AddFormats };
const addFormats: AddFormats = formatsPlugin.default ?? formatsPlugin;

/** Which way a body travels; requests are validated closed (unknown members rejected). */
export type Direction = 'request' | 'response';

/** One schema violation, as TS 29.122 `InvalidParam` wants it: a JSON pointer and a reason. */
export interface SchemaViolation {
  readonly param: string;
  readonly reason: string;
}

/** A compiled validator: true, or the violations (never the offending values). */
export interface BodyValidator {
  (body: unknown): boolean;
  readonly violations: () => readonly SchemaViolation[];
}

/** The loaded schemas of the T8 APIs. */
export interface T8Schemas {
  /**
   * A validator for a schema of an API file: a component name (`MonitoringEventSubscription`)
   * or a local JSON pointer into the bundled document (`#/paths/...`). Compiled once, cached.
   */
  validator(api: T8ApiFile, schema: string, direction?: Direction): BodyValidator;
  /**
   * The bundled document of an API file (response direction, after the transforms). Its `$ref`s
   * are local to the combined bundle (`#/x-t8/<api>/...`).
   */
  document(api: T8ApiFile): Readonly<Record<string, unknown>>;
  /** Milliseconds spent bundling and preparing every file. */
  readonly loadMs: number;
  /** What the request-direction transform changed (see schema-transform.ts). */
  readonly transformStats: TransformStats;
}

const MAX_REASON_CHARS = 200;
const MAX_PARAM_CHARS = 256;
let cached: Promise<T8Schemas> | undefined;

/**
 * Bundles the vendored 3GPP files (local files only: swagger-parser's HTTP resolver is off, so
 * loading never reaches the network) and prepares ajv validators. Loaded once per process; every
 * caller shares the same promise.
 */
export function loadT8Schemas(): Promise<T8Schemas> {
  cached ??= load().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached;
}

/** Member of the combined document under which each API file is bundled. */
const ROOT_MEMBER = 'x-t8';

/**
 * Bundles every API file in one pass: a synthetic root document `$ref`s each file whole, so the
 * 100-odd files they reference are read and parsed once instead of once per API.
 */
async function bundleAll(): Promise<Record<string, unknown>> {
  const refs = Object.fromEntries(Object.entries(T8_API_FILES).map(([api, file]) => [api, { $ref: file }]));
  const root = { openapi: '3.0.0', info: { title: 'aese-t8-bundle', version: '1' }, paths: {}, [ROOT_MEMBER]: refs };
  const doc = await SwaggerParser.bundle(
    join(OPENAPI_DIR, 'aese-t8-root.yaml'),
    root as never,
    {
      resolve: { http: false, external: true },
      validate: { schema: false, spec: false },
    } as SwaggerParser.Options,
  );
  return doc as unknown as Record<string, unknown>;
}

function toViolations(errors: readonly ErrorObject[] | null | undefined): SchemaViolation[] {
  return (errors ?? []).map(e => {
    let param = e.instancePath === '' ? '/' : e.instancePath;
    const extra = (e.params as { unevaluatedProperty?: string; additionalProperty?: string; missingProperty?: string }) ?? {};
    const member = extra.unevaluatedProperty ?? extra.additionalProperty ?? extra.missingProperty;
    if (member !== undefined) param = `${e.instancePath}/${member.replace(/~/g, '~0').replace(/\//g, '~1')}`;
    const reason = e.keyword === 'unevaluatedProperties' || e.keyword === 'additionalProperties' ? 'unknown member' : (e.message ?? 'invalid');
    return { param: param.slice(0, MAX_PARAM_CHARS), reason: reason.slice(0, MAX_REASON_CHARS) };
  });
}

async function load(): Promise<T8Schemas> {
  const started = performance.now();
  const response = await bundleAll();
  // Each direction gets its own copy: only requests are closed.
  const request = structuredClone(response);
  const closedStats = toJsonSchemaSemantics(request, { closed: true });
  toJsonSchemaSemantics(response, { closed: false });
  const docs = new Map<Direction, Record<string, unknown>>([
    ['request', request],
    ['response', response],
  ]);
  // allErrors stays off: reporting every error of a hostile body costs time (ajv's advice).
  // code.optimize off: compiling the large 3GPP graphs is several times faster, checks the same.
  const ajv = new Ajv2019({ strict: false, allErrors: false, validateSchema: false, discriminator: false, logger: false, code: { optimize: false } });
  addFormats(ajv);
  for (const [direction, doc] of docs) ajv.addSchema(doc, `urn:aese:t8:${direction}`);
  const compiled = new Map<string, BodyValidator>();
  const loadMs = performance.now() - started;

  return {
    loadMs,
    transformStats: closedStats,
    document: api => {
      if (!(api in T8_API_FILES)) throw new TypeError(`unknown T8 API file ${api}`);
      return (response[ROOT_MEMBER] as Record<string, Record<string, unknown>>)[api];
    },
    validator: (api, schema, direction = 'request') => {
      if (!(api in T8_API_FILES)) throw new TypeError(`unknown T8 API file ${api}`);
      const cacheKey = `${direction}:${api}:${schema}`;
      const hit = compiled.get(cacheKey);
      if (hit) return hit;
      const local = schema.startsWith('#') ? schema.slice(1) : `/components/schemas/${schema}`;
      const pointer = `#/${ROOT_MEMBER}/${api}${local}`;
      if (resolvePointer(docs.get(direction), pointer) === undefined) throw new TypeError(`no schema ${schema} in ${T8_API_FILES[api]}`);
      const fn: ValidateFunction = ajv.compile({ $ref: `urn:aese:t8:${direction}${pointer}` });
      let last: SchemaViolation[] = [];
      const validate = ((body: unknown) => {
        const ok = fn(body);
        last = ok ? [] : toViolations(fn.errors);
        return ok;
      }) as BodyValidator;
      Object.defineProperty(validate, 'violations', { value: () => last });
      compiled.set(cacheKey, validate);
      return validate;
    },
  };
}
