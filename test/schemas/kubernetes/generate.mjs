// Writes the strict standalone JSON schemas in this folder from the Kubernetes API models that
// @kubernetes/client-node generates from the Kubernetes OpenAPI document (README.md here):
//   npm pack @kubernetes/client-node@2.0.1 && tar xzf kubernetes-client-node-2.0.1.tgz
//   node test/schemas/kubernetes/generate.mjs package/dist/gen/models
// Each object type lists exactly its fields (unknown fields are refused), its required fields and
// the JSON type of each.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

const modelsDir = process.argv[2];
if (!modelsDir) throw new Error('usage: generate.mjs <@kubernetes/client-node dist/gen/models folder>');
const here = new URL('.', import.meta.url).pathname;

/** The kinds the manifests use: file name, model, apiVersion. */
const KINDS = [
  ['deployment', 'V1Deployment', 'apps/v1', 'Deployment'],
  ['statefulset', 'V1StatefulSet', 'apps/v1', 'StatefulSet'],
  ['service', 'V1Service', 'v1', 'Service'],
  ['configmap', 'V1ConfigMap', 'v1', 'ConfigMap'],
  ['networkpolicy', 'V1NetworkPolicy', 'networking.k8s.io/v1', 'NetworkPolicy'],
  ['horizontalpodautoscaler-autoscaling-v2', 'V2HorizontalPodAutoscaler', 'autoscaling/v2', 'HorizontalPodAutoscaler'],
];

const models = new Map();
async function model(name) {
  if (!models.has(name)) {
    const mod = await import(pathToFileURL(join(modelsDir, `${name}.js`)).href);
    const dts = readFileSync(join(modelsDir, `${name}.d.ts`), 'utf8');
    const required = [...dts.matchAll(/^ {4}'([^']+)': /gm)].map(m => m[1]);
    models.set(name, { attributes: mod[name].attributeTypeMap, required });
  }
  return models.get(name);
}

async function typeSchema(type, format, defs) {
  let m;
  if ((m = type.match(/^Array<(.+)>$/))) return { type: 'array', items: await typeSchema(m[1], format, defs) };
  if ((m = type.match(/^\{ \[key: string\]: (.+); \}$/))) return { type: 'object', additionalProperties: await typeSchema(m[1], format, defs) };
  switch (type) {
    case 'string':
      return { type: 'string' };
    case 'Date':
      return { type: 'string', format: 'date-time' };
    case 'boolean':
      return { type: 'boolean' };
    case 'number':
      return { type: format === 'double' ? 'number' : 'integer' };
    case 'IntOrString':
      return { oneOf: [{ type: 'string' }, { type: 'integer' }] };
    case 'any':
      return {};
    default:
      await define(type, defs);
      return { $ref: `#/definitions/${type}` };
  }
}

async function define(name, defs) {
  if (name in defs) return;
  defs[name] = {};
  const { attributes, required } = await model(name);
  const properties = {};
  for (const a of attributes) properties[a.baseName] = await typeSchema(a.type, a.format, defs);
  const byName = new Map(attributes.map(a => [a.name, a.baseName]));
  defs[name] = { type: 'object', properties, additionalProperties: false, ...(required.length ? { required: required.map(r => byName.get(r) ?? r) } : {}) };
}

for (const [file, name, apiVersion, kind] of KINDS) {
  const definitions = {};
  await define(name, definitions);
  const root = structuredClone(definitions[name]);
  root.properties.apiVersion = { type: 'string', enum: [apiVersion] };
  root.properties.kind = { type: 'string', enum: [kind] };
  root.required = [...new Set([...(root.required ?? []), 'apiVersion', 'kind', 'metadata'])];
  const schema = { $schema: 'http://json-schema.org/draft-07/schema#', title: `${apiVersion} ${kind}`, ...root, definitions };
  writeFileSync(join(here, `${file}.json`), `${JSON.stringify(schema, null, 1)}\n`);
}
