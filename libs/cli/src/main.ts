/**
 * Entry point of the `aese` command (see bin/aese.mjs). The only place the CLI touches the
 * process: arguments, environment, output streams and exit status.
 */
import { runCli } from './commands.js';

process.exitCode = await runCli(process.argv.slice(2), {
  stdout: text => process.stdout.write(text),
  stderr: text => process.stderr.write(text),
  env: process.env,
});
