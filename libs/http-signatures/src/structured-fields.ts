import { parseDictionary, serializeKey } from 'structured-headers';
import type { Dictionary } from 'structured-headers';
import { parseSimpleDictionary } from './simple-dictionary.js';

/**
 * How many commas a dictionary may contain before it is refused. Each comma costs one extra
 * parse of a segment (see {@link parseDictionaryStrict}); the bound keeps that linear in
 * practice while leaving room for dozens of members.
 */
export const MAX_DICTIONARY_COMMAS = 64;

/** Why {@link parseDictionaryStrict} refused a value. */
export type DictionaryProblem = 'malformed' | 'duplicate-key' | 'too-complex';

/** Thrown by {@link parseDictionaryStrict}; callers turn it into their own typed error. */
export class DictionaryParseError extends Error {
  override readonly name = 'DictionaryParseError';
  readonly problem: DictionaryProblem;

  constructor(problem: DictionaryProblem, options?: { cause?: unknown }) {
    super(`structured dictionary refused: ${problem}`, options);
    this.problem = problem;
  }
}

function tryParse(value: string): Dictionary | undefined {
  try {
    return parseDictionary(value);
  } catch {
    return undefined;
  }
}

/**
 * Parses an RFC 8941 dictionary and refuses duplicate keys.
 *
 * RFC 8941 says a repeated key silently overwrites the earlier one, and structured-headers does
 * exactly that. For `Signature-Input`, `Signature` and `Content-Digest` a repeated label or
 * algorithm is a sign of tampering (an intermediary appending a field line), so it is refused.
 * Duplicates are found with the library alone: the value is cut at each comma whose prefix is
 * itself a valid dictionary. A comma inside a string leaves the prefix with an unterminated
 * string, and no other sf type may contain a comma, so those cuts are exactly the member
 * boundaries; the number of members then has to equal the number of distinct keys.
 */
export function parseDictionaryStrict(value: string): Dictionary {
  // Without a comma there is one member at most: nothing can repeat (the usual signature field).
  const single = !value.includes(',');
  if (single) {
    const simple = parseSimpleDictionary(value);
    if (simple !== undefined) return simple;
  }
  let dictionary: Dictionary;
  try {
    dictionary = parseDictionary(value);
  } catch (err) {
    throw new DictionaryParseError('malformed', { cause: err });
  }
  if (single) return dictionary;
  let members = 0;
  let commas = 0;
  let start = 0;
  for (let comma = value.indexOf(','); comma !== -1; comma = value.indexOf(',', comma + 1)) {
    if (++commas > MAX_DICTIONARY_COMMAS) throw new DictionaryParseError('too-complex');
    const segment = tryParse(value.slice(start, comma).replace(/^[ \t]+/, ''));
    if (segment !== undefined) {
      members += segment.size;
      start = comma + 1;
    }
  }
  members += tryParse(value.slice(start).replace(/^[ \t]+/, ''))?.size ?? 0;
  if (members !== dictionary.size) throw new DictionaryParseError('duplicate-key');
  return dictionary;
}

/**
 * Throws TypeError unless `label` can be a dictionary key (RFC 8941: `[a-z*][a-z0-9_\-.*]*`).
 * Labels come from configuration, so a bad one is a programming mistake, not a client error.
 */
export function assertDictionaryKey(label: string): void {
  try {
    serializeKey(label);
  } catch (err) {
    throw new TypeError(`invalid signature label ${JSON.stringify(label)}`, { cause: err });
  }
}
