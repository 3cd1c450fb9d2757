#!/usr/bin/env node
// Launcher of the `aese` operator CLI: the sources are TypeScript run through tsx (no build step).
import { register } from 'tsx/esm/api';

register();
try {
  await import(new URL('../libs/cli/src/main.ts', import.meta.url).href);
} catch (err) {
  // A broken install, not a command failure: still one line, no stack.
  process.stderr.write(`aese: cannot start: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}\n`);
  process.exitCode = 1;
}
