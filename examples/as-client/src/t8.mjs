// One T8 call as the profile asks: a fresh token, the request signed, the answer's signature
// verified against the request's, and a JWE body decrypted.
import { openBody, signRequest, verifyResponse } from './signatures.mjs';

/** The collection URL of an API's subscriptions for this AS, e.g. 3gpp-monitoring-event. */
export function subscriptionsUrl(bundle, api) {
  return `${bundle.edgeUrl}/${api}/v1/${encodeURIComponent(bundle.scsAsId)}/subscriptions`;
}

/** An API's name from a resource or collection URL of this SCEF. */
export function apiOf(bundle, url) {
  const path = new URL(url, bundle.edgeUrl).pathname;
  return path.split('/')[1];
}

/**
 * Sends one signed T8 request and checks the answer. Returns status, headers, the verified
 * signature's parameters and the JSON body (decrypted when it came as JWE). An answer without
 * a valid signature is reported as such and never trusted.
 */
export async function t8Call(bundle, scef, { method, url, json, jose = false, scopes }) {
  const { access_token: accessToken } = await scef.token(scopes);
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  const headers = { authorization: `Bearer ${accessToken}`, accept: jose ? 'application/jose' : 'application/json' };
  if (body) headers['content-type'] = 'application/json';
  const signedHeaders = await signRequest(bundle, { method, url, headers, body });
  const res = await scef.fetch(url, { method, headers: signedHeaders, ...(body ? { body } : {}) });
  const answer = { status: res.status, headers: Object.fromEntries(res.headers), body: Buffer.from(await res.arrayBuffer()) };
  if (answer.headers['signature-input'] === undefined) {
    // Only answers given before the AS is known (its certificate refused, say) are unsigned.
    return { ...answer, verified: undefined, ...(await openBody(bundle, answer.headers['content-type'], answer.body)) };
  }
  const verified = await verifyResponse(scef.keyLookup, answer, { method, url, headers: signedHeaders });
  return { ...answer, verified, ...(await openBody(bundle, answer.headers['content-type'], answer.body)) };
}
