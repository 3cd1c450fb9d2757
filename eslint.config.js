// Lint for the rules of CONVENTIONS.md that a linter can check (it says which are enforced here).
// Type-aware: the TypeScript files are checked with the types of tsconfig.json.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { basename } from 'node:path';

const KEBAB_CASE_FILE = /^[a-z0-9]+(?:-[a-z0-9]+)*(?:\.[a-z0-9]+)*$/;

/** File names are kebab-case (CONVENTIONS.md, Layout); no plugin in the tree checks that. */
const aese = {
  rules: {
    'kebab-case-file-names': {
      meta: { type: 'suggestion', schema: [], messages: { name: 'File name {{name}} is not kebab-case.' } },
      create(context) {
        return {
          Program(node) {
            const name = basename(context.filename);
            if (!KEBAB_CASE_FILE.test(name)) context.report({ node, messageId: 'name', data: { name } });
          },
        };
      },
    },
  },
};

/** Syntax the conventions rule out everywhere. */
const RESTRICTED_SYNTAX = [
  { selector: 'ExportAllDeclaration', message: 'Name each export: no `export *` (CONVENTIONS.md, Layout).' },
  { selector: 'TSEnumDeclaration', message: 'Use an `as const` object, not an `enum` (CONVENTIONS.md, Layout).' },
  {
    selector: "MemberExpression[object.type='MemberExpression'][object.object.name='process'][object.property.name='env']",
    message: 'Settings are read once through loadConfig (libs/config): do not read process.env here.',
  },
];

/** `.only` and pending tests (mocha also refuses them at run time). */
const RESTRICTED_TEST_SYNTAX = [
  {
    selector: 'CallExpression > MemberExpression.callee[object.name=/^(describe|context|it|specify)$/][property.name=/^(only|skip)$/]',
    message: 'No `.only` or skipped tests.',
  },
];

/** A library is imported through its index only; a sibling's src/ is not an entry. */
const DEEP_IMPORTS = [
  { group: ['@aese/*/src', '@aese/*/src/**'], message: 'Import a library through its index (@aese/<lib>).' },
  { group: ['**/libs/*/src', '**/libs/*/src/**'], message: 'Import a library through its name (@aese/<lib>), not its files.' },
];

/** The Node globals the plain JavaScript files use (TypeScript files get them from @types/node). */
const NODE_GLOBALS = Object.fromEntries(
  [
    'process',
    'console',
    'Buffer',
    'URL',
    'setTimeout',
    'clearTimeout',
    'setInterval',
    'clearInterval',
    'fetch',
    'AbortController',
    'AbortSignal',
    'TextEncoder',
    'TextDecoder',
    'crypto',
  ].map(name => [name, 'readonly']),
);

const TESTS = ['libs/*/test/**', 'services/*/test/**', 'test/**'];

export default tseslint.config(
  {
    ignores: [
      'libs/protos/src/gen/**',
      'libs/t8-openapi/src/gen/**',
      'libs/t8-openapi/openapi/**',
      'test/schemas/**',
      '**/dist/**',
      'coverage/**',
      '.state/**',
      'examples/**/node_modules/**',
    ],
  },
  {
    linterOptions: { reportUnusedDisableDirectives: 'error' },
  },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    files: ['**/*.ts'],
    languageOptions: {
      parserOptions: { project: './tsconfig.json', tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // Handlers are async by convention even when they do not await (one adapter awaits them).
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      // Forwarding a caught rejection unchanged is allowed; making up a non-Error reason is not.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/consistent-type-imports': ['error', { prefer: 'type-imports', fixStyle: 'separate-type-imports' }],
      '@typescript-eslint/no-import-type-side-effects': 'error',
      '@typescript-eslint/consistent-type-exports': 'error',
    },
  },
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    plugins: { aese },
    rules: {
      'no-console': 'error',
      'no-restricted-syntax': ['error', ...RESTRICTED_SYNTAX],
      'no-restricted-imports': ['error', { patterns: DEEP_IMPORTS }],
      'aese/kebab-case-file-names': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
    },
  },
  {
    // Domain code imports neither grpc-js nor NATS (CONVENTIONS.md, Layout).
    files: ['services/*/src/domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: ['@grpc/grpc-js', '@grpc/proto-loader', 'nats', '@aese/nats', '@aese/grpc-server', '@aese/grpc-client'].map(name => ({
            name,
            message: 'Domain code imports neither grpc-js nor NATS: adapt it in handlers.ts or server.ts.',
          })),
          patterns: DEEP_IMPORTS,
        },
      ],
    },
  },
  {
    // Settings are read in libs/config only.
    files: ['libs/config/src/**/*.ts'],
    rules: { 'no-restricted-syntax': ['error', ...RESTRICTED_SYNTAX.filter(r => !r.selector.includes("'env'"))] },
  },
  {
    files: TESTS.map(dir => `${dir}/*.ts`).concat(TESTS.map(dir => `${dir}/*.mjs`)),
    rules: {
      'no-console': 'off',
      // chai's property assertions (`.to.be.empty`, `.to.be.true`) are expressions by design.
      '@typescript-eslint/no-unused-expressions': 'off',
      'no-restricted-syntax': ['error', ...RESTRICTED_SYNTAX, ...RESTRICTED_TEST_SYNTAX],
    },
  },
  {
    // Entry points whose output is the point: the bench reports and the launcher's own lines.
    files: ['scripts/**/*.ts', 'bin/*.mjs', 'libs/t8-openapi/scripts/**/*.ts', 'examples/**/*.mjs'],
    rules: { 'no-console': 'off' },
  },
  {
    // structured-headers' declarations reach the linter's program as error types (tsc resolves
    // them); the values are checked at run time where these files parse structured fields.
    files: ['libs/http-signatures/src/components.ts', 'libs/http-signatures/src/content-digest.ts'],
    rules: { '@typescript-eslint/no-unsafe-assignment': 'off' },
  },
  {
    // Plain JavaScript is outside tsconfig.json: no type information for it.
    files: ['**/*.js', '**/*.mjs'],
    ...tseslint.configs.disableTypeChecked,
    languageOptions: { globals: NODE_GLOBALS },
  },
);
