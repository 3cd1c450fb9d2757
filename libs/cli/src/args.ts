import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { UsageError } from './errors.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** Parses a command's arguments strictly; anything malformed is a usage error (exit 2). */
export function parseCommandArgs<O extends Options>(args: readonly string[], options: O) {
  try {
    return parseArgs({ args: [...args], options, allowPositionals: true, strict: true });
  } catch (err: unknown) {
    throw new UsageError((err as Error).message);
  }
}

/** Refuses positional arguments for a command that takes none. */
export function noPositionals(positionals: readonly string[], command: string): void {
  if (positionals.length > 0) throw new UsageError(`${command} takes no argument ${JSON.stringify(positionals[0])}`);
}
