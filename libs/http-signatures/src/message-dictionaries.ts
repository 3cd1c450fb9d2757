import type { Dictionary } from 'structured-headers';
import type { HttpMessageView } from './message.js';
import { parseDictionaryStrict } from './structured-fields.js';

interface ParsedField {
  readonly value: string;
  readonly dictionary: Dictionary;
}

/**
 * Dictionary fields already parsed, per message view and field name. A server verifies a request's
 * `Signature` and then covers it in the response (`"signature";req;key="sig1"`): the second look
 * finds the first one's result. An entry is used only for the very same field value, so a view
 * whose headers changed is parsed again; entries go when the view does.
 */
const parsedFields = new WeakMap<HttpMessageView, Map<string, ParsedField>>();

/**
 * {@link parseDictionaryStrict} of `value`, the combined value of field `name` of `message`.
 * The dictionary may be shared with other readers of the same message: it must not be changed.
 * @throws DictionaryParseError as parseDictionaryStrict does
 */
export function fieldDictionary(message: HttpMessageView, name: string, value: string): Dictionary {
  let fields = parsedFields.get(message);
  const known = fields?.get(name);
  if (known !== undefined && known.value === value) return known.dictionary;
  const dictionary = parseDictionaryStrict(value);
  if (fields === undefined) {
    fields = new Map();
    parsedFields.set(message, fields);
  }
  fields.set(name, { value, dictionary });
  return dictionary;
}
