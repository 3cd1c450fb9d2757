import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DefaultPolicies } from './domain/policy-administration.js';

/** The folder of the shipped schema, generic policy set and example grants. */
export const POLICY_DIR = fileURLToPath(new URL('../policies/', import.meta.url));

/** File names inside {@link POLICY_DIR}. */
export const POLICY_FILES = {
  schema: 'schema.cedarschema',
  policies: 'base.cedar',
  exampleGrants: 'example-grants.json',
} as const;

/** The Cedar schema every policy set and grants file is validated against. */
export function readShippedSchema(dir: string = POLICY_DIR): string {
  return readFileSync(join(dir, POLICY_FILES.schema), 'utf8');
}

/** The policy set and grants stored as version 1 when the store holds none. */
export function readShippedDefaults(dir: string = POLICY_DIR): DefaultPolicies {
  return {
    policies: readFileSync(join(dir, POLICY_FILES.policies), 'utf8'),
    entitiesJson: readFileSync(join(dir, POLICY_FILES.exampleGrants), 'utf8'),
  };
}
