import { AeseError } from '@aese/errors';
import { T8_SCOPES } from '@aese/t8-catalog';
import { JSON_MEDIA_TYPE } from './responses.js';
import type { EdgeResponse } from './responses.js';

/** Where the edge serves what it serves; the metadata advertises the same paths. */
export const EDGE_PATHS = {
  token: '/oauth2/token',
  revoke: '/oauth2/revoke',
  metadata: '/.well-known/oauth-authorization-server',
  jwks: '/.well-known/jwks.json',
} as const;

/** Algorithms of access tokens and of response and notification signatures (the T8 profile). */
export const SIGNING_ALGORITHMS: readonly string[] = ['ES256', 'EdDSA'];

/**
 * Checks an issuer identifier (RFC 8414 section 2): an `https` URL with no query, fragment or
 * user info. The edge serves its endpoints at fixed paths, so the issuer has no path either.
 * Tokens carry this exact string as `iss` and `aud`, so it is returned unchanged.
 */
export function parseIssuer(raw: string, name = 'issuer'): string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new AeseError('INVALID_INPUT', `setting ${name} must be an https URL`);
  }
  if (url.protocol !== 'https:') throw new AeseError('INVALID_INPUT', `setting ${name} must be an https URL`);
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || raw.includes('?') || raw.includes('#')) {
    throw new AeseError('INVALID_INPUT', `setting ${name} must have no user info, query or fragment`);
  }
  if (url.pathname !== '/') throw new AeseError('INVALID_INPUT', `setting ${name} must have no path`);
  return raw;
}

/** An absolute URL of one of the edge's paths under the issuer. */
export function endpointUrl(issuer: string, path: string): string {
  return new URL(path, issuer).href;
}

/**
 * The RFC 8414 authorization server metadata. Every URL is built from the configured issuer,
 * never from the request, so a client cannot make the edge advertise a host of its choosing.
 */
export function authorizationServerMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    token_endpoint: endpointUrl(issuer, EDGE_PATHS.token),
    jwks_uri: endpointUrl(issuer, EDGE_PATHS.jwks),
    revocation_endpoint: endpointUrl(issuer, EDGE_PATHS.revoke),
    revocation_endpoint_auth_methods_supported: ['tls_client_auth'],
    // The served T8 APIs (capability-exposure's modules, a test checks they agree), which are
    // also the only scopes the AS registry and the token endpoint accept.
    scopes_supported: [...T8_SCOPES],
    // No authorization endpoint: the only grant is client_credentials.
    response_types_supported: [],
    grant_types_supported: ['client_credentials'],
    token_endpoint_auth_methods_supported: ['tls_client_auth'],
    tls_client_certificate_bound_access_tokens: true,
    signing_alg_values_supported: [...SIGNING_ALGORITHMS],
  };
}

/** The metadata document; it changes only with configuration, so caches may keep it a while. */
export function metadataResponse(issuer: string): EdgeResponse {
  return {
    status: 200,
    headers: { 'content-type': JSON_MEDIA_TYPE, 'cache-control': 'max-age=300' },
    body: authorizationServerMetadata(issuer),
  };
}
