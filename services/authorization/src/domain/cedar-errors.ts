const MAX_ERRORS_SHOWN = 5;
const MAX_ERROR_LENGTH = 300;

/**
 * Cedar's diagnostics as one bounded line for an operator: the first few messages, each cut,
 * so a pathological input cannot produce a pathological error.
 */
export function describeCedarErrors(errors: readonly { message: string; help?: string | null }[]): string {
  const shown = errors.slice(0, MAX_ERRORS_SHOWN).map(e => {
    const text = e.help ? `${e.message} (${e.help})` : e.message;
    return text.length > MAX_ERROR_LENGTH ? `${text.slice(0, MAX_ERROR_LENGTH)}...` : text;
  });
  const more = errors.length > MAX_ERRORS_SHOWN ? `; and ${errors.length - MAX_ERRORS_SHOWN} more` : '';
  return `${shown.join('; ')}${more}`.replace(/\s*[\r\n]+\s*/g, ' ');
}
