import type { Parameters } from 'structured-headers';
import { componentKey, componentValues, serializeComponent } from './components.js';
import type { ComponentIdentifier } from './components.js';
import { SignatureError } from './errors.js';
import type { HttpMessageView } from './message.js';
import { serializeParametersQuick } from './quick-serialize.js';

/** A signature base and the `@signature-params` value it ends with. */
export interface SignatureBase {
  /** The exact string that is signed (RFC 9421 section 2.5), lines joined by LF, no final LF. */
  readonly base: string;
  /** The serialized inner list with parameters: the `Signature-Input` member value. */
  readonly signatureParams: string;
}

/**
 * Refuses a covered component list that names one identifier twice (RFC 9421 section 2.5 step
 * 2.1.1); parameter order does not make two identifiers different.
 */
export function assertNoDuplicateComponents(components: readonly ComponentIdentifier[]): void {
  const seen = new Set<string>();
  for (const component of components) {
    const key = componentKey(component);
    if (seen.has(key)) {
      throw new SignatureError('DUPLICATE_COMPONENT', 'the covered components list a component twice');
    }
    seen.add(key);
  }
}

/**
 * Builds the signature base of RFC 9421 section 2.5: one line `<identifier>: <value>` per covered
 * component, in the covered order, then `"@signature-params": <inner list>`. The parameters are
 * serialized in the order given (they are part of what is signed). Identifiers must have passed
 * `checkComponent` and the list {@link assertNoDuplicateComponents}.
 *
 * @param request the request a response answers, for components with `;req`
 * @throws SignatureError COMPONENT_NOT_PRESENT, COMPONENT_INVALID, ...
 */
export function buildSignatureBase(message: HttpMessageView, components: readonly ComponentIdentifier[], params: Parameters, request?: HttpMessageView): SignatureBase {
  let base = '';
  let identifiers = '';
  for (const component of components) {
    const identifier = serializeComponent(component);
    for (const value of componentValues(component, message, request)) {
      base += `${identifier}: ${value}\n`;
    }
    identifiers += (identifiers === '' ? '' : ' ') + identifier;
  }
  // The inner list of the covered identifiers, each serialized as on its line, then the parameters.
  const signatureParams = `(${identifiers})${serializeParametersQuick(params)}`;
  return { base: `${base}"@signature-params": ${signatureParams}`, signatureParams };
}
