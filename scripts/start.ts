/**
 * `npm start`: every service of the SCEF on this machine, each its own process, with a PKI and a
 * NATS made on first run. Settings and behaviour: `runStack` in libs/cli/src/stack.ts and the
 * README's configuration table.
 *
 * `npm start -- --production` builds the services first (scripts/build.ts) and runs the bundles
 * with plain node, as the images do.
 */
import { describeFailure, runStack } from '@aese/cli';

const args = process.argv.slice(2);
const unknown = args.filter(a => a !== '--production');
if (unknown.length > 0) {
  process.stderr.write(`start: unknown option ${unknown[0]} (the only one is --production)\n`);
  process.exit(2);
}
const production = args.includes('--production');
// esbuild is a devDependency: loaded only when a build is asked for.
const build = async (dir: string): Promise<unknown> => (await import('./build.ts')).buildAll(dir);

runStack(production ? { production, build } : {}).then(
  code => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`start: ${describeFailure(err)}\n`);
    process.exit(1);
  },
);
