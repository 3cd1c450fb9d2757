/**
 * `npm start`: every service of the SCEF on this machine, each its own process, with a PKI and a
 * NATS made on first run. Settings and behaviour: `runStack` in libs/cli/src/stack.ts and the
 * README's configuration table.
 */
import { describeFailure, runStack } from '@aese/cli';

runStack().then(
  code => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`start: ${describeFailure(err)}\n`);
    process.exit(1);
  },
);
