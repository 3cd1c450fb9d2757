import { serializeBareItem, serializeKey, serializeString } from 'structured-headers';
import type { BareItem, InnerList, Item, Parameters } from 'structured-headers';

/*
 * RFC 8941 serialisation giving the bytes structured-headers gives, with less work for the values
 * signatures carry: the same steps in plain loops instead of Array.from/map/join, strings with
 * nothing to escape written directly, byte sequences through Buffer's base64 (the alphabet and
 * padding btoa uses). Every other value goes to structured-headers, which also does the checks.
 */

/** Printable ASCII without `"` and `\`: an sf-string that needs no escape and passes the ASCII check. */
const PLAIN_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** `"value"`, as structured-headers' serializeString; throws as it does for non-ASCII. */
export function serializeStringQuick(value: string): string {
  return PLAIN_STRING.test(value) ? `"${value}"` : serializeString(value);
}

/** `:<base64>:` for a byte sequence. */
export function serializeBytes(bytes: ArrayBuffer | Uint8Array): string {
  const view = Buffer.isBuffer(bytes) ? bytes : bytes instanceof Uint8Array ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) : Buffer.from(bytes);
  return `:${view.toString('base64')}:`;
}

function serializeBareItemQuick(value: BareItem): string {
  if (typeof value === 'string') return serializeStringQuick(value);
  if (value instanceof ArrayBuffer || value instanceof Uint8Array) return serializeBytes(value);
  return serializeBareItem(value);
}

/** `;key;key=value...`, in the map's order; `''` for no parameters. */
export function serializeParametersQuick(params: Parameters): string {
  if (params.size === 0) return '';
  let out = '';
  for (const [key, value] of params) {
    out += ';' + serializeKey(key);
    if (value !== true) out += '=' + serializeBareItemQuick(value);
  }
  return out;
}

/** A parameterised item. */
export function serializeItemQuick([value, params]: Item): string {
  return serializeBareItemQuick(value) + serializeParametersQuick(params);
}

/** `(item item ...)` and the list's parameters. */
export function serializeInnerListQuick([items, params]: InnerList): string {
  let out = '(';
  for (let i = 0; i < items.length; i++) out += (i === 0 ? '' : ' ') + serializeItemQuick(items[i]);
  return out + ')' + serializeParametersQuick(params);
}

/**
 * A one-member dictionary whose value is a byte sequence without parameters, as `Signature`
 * (`sig1=:...:`) and `Content-Digest` (`sha-256=:...:`) carry it.
 */
export function serializeBytesMember(key: string, bytes: Uint8Array): string {
  return serializeKey(key) + '=' + serializeBytes(bytes);
}
