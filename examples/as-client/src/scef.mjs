// The SCEF as an OAuth 2.0 authorization server: mTLS connection, RFC 8414 discovery, the JWKS
// its response and notification signatures verify against, and client-credentials tokens with
// tls_client_auth (RFC 8705).
import { createPublicKey } from 'node:crypto';
import * as oauth from 'oauth4webapi';
import { Agent, fetch as undiciFetch } from 'undici';
import { createVerifier } from 'http-message-signatures';

/** JWS algorithms of the SCEF's keys, as RFC 9421 names them. */
const HTTP_SIG_ALG = { ES256: 'ecdsa-p256-sha256', EdDSA: 'ed25519', Ed25519: 'ed25519' };

/**
 * One mTLS client for everything the AS asks the SCEF: its client certificate from the bundle,
 * the bundle's T8 server CA as the only trust anchor, TLS 1.3.
 */
export function scefClient(bundle) {
  const dispatcher = new Agent({ connect: { ...bundle.tls, minVersion: 'TLSv1.3' } });
  const fetch = (url, init = {}) => undiciFetch(url, { ...init, dispatcher });
  const issuer = new URL(bundle.edgeUrl);
  let metadata;
  let keys;

  /** RFC 8414 metadata, checked by oauth4webapi (the issuer must be the bundle's edge URL). */
  const discover = async () => {
    if (!metadata) {
      const res = await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', [oauth.customFetch]: fetch });
      metadata = await oauth.processDiscoveryResponse(issuer, res);
      if (!metadata.token_endpoint_auth_methods_supported?.includes('tls_client_auth')) {
        throw new Error('the SCEF does not offer tls_client_auth');
      }
    }
    return metadata;
  };

  const loadKeys = async () => {
    const { jwks_uri: jwksUri } = await discover();
    const res = await fetch(jwksUri, { headers: { accept: 'application/json' } });
    if (!res.ok) throw new Error(`JWKS ${jwksUri}: HTTP ${res.status}`);
    keys = (await res.json()).keys ?? [];
    return keys;
  };

  /**
   * The http-message-signatures key lookup for the SCEF's signatures: the `keyid` must name a
   * key of the published JWKS (fetched again once for an unknown keyid: keys rotate).
   */
  const keyLookup = async params => {
    const find = list => list.find(k => k.kid === params.keyid && (k.use === undefined || k.use === 'sig'));
    let jwk = find(keys ?? (await loadKeys()));
    if (!jwk) jwk = find(await loadKeys());
    const alg = jwk && (HTTP_SIG_ALG[jwk.alg] ?? (jwk.crv === 'Ed25519' ? 'ed25519' : jwk.crv === 'P-256' ? 'ecdsa-p256-sha256' : undefined));
    if (!jwk || !alg) return null;
    return { id: jwk.kid, algs: [alg], verify: createVerifier(createPublicKey({ key: jwk, format: 'jwk' }), alg) };
  };

  /** A client-credentials access token for the given scopes (default: every scope of the bundle). */
  const token = async (scopes = bundle.scopes) => {
    const as = await discover();
    const client = { client_id: bundle.scsAsId };
    const res = await oauth.clientCredentialsGrantRequest(as, client, oauth.TlsClientAuth(), { scope: scopes.join(' ') }, { [oauth.customFetch]: fetch });
    return oauth.processClientCredentialsResponse(as, client, res);
  };

  return { fetch, discover, keyLookup, token, close: () => dispatcher.close() };
}
