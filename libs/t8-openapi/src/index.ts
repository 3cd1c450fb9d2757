export { OPENAPI_DIR, T8_API_FILES } from './files.js';
export type { T8ApiFile } from './files.js';
export { loadT8Schemas } from './load.js';
export type { BodyValidator, Direction, SchemaViolation, T8Schemas } from './load.js';
export { resolvePointer, toJsonSchemaSemantics } from './schema-transform.js';
export type { TransformStats } from './schema-transform.js';
