import { AeseError } from '@aese/errors';

/** The name the CLI is installed under (root package.json `bin`). */
export const CLI_NAME = 'aese';

/**
 * Bad command-line input: an unknown command or option, a missing argument, a malformed value.
 * The CLI prints its message on one line and exits with {@link EXIT_USAGE}.
 */
export class UsageError extends AeseError {
  override readonly name = 'UsageError';
  constructor(message: string) {
    super('INVALID_INPUT', message);
  }
}

/** Exit status of a command that did what it was asked. */
export const EXIT_OK = 0;
/** Exit status of a command that was understood but failed (refused, unreachable, ...). */
export const EXIT_FAILURE = 1;
/** Exit status of a command line that could not be understood. */
export const EXIT_USAGE = 2;

/**
 * One line describing a failure, for a terminal: never a stack trace, never several lines.
 * Stable codes of {@link AeseError}s are shown because operators search logs and docs by them.
 */
export function describeFailure(err: unknown): string {
  let text: string;
  if (err instanceof UsageError) text = err.message;
  else if (err instanceof AeseError) text = `${err.message} (${err.code})`;
  else if (err instanceof Error) text = err.message;
  else text = String(err);
  return text.replace(/\s*[\r\n]+\s*/g, ' ').trim() || 'unknown error';
}
