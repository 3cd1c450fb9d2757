/**
 * T8-shaped messages and the edge's verification settings (T8-SECURITY-PROFILE section 4), shared
 * by the cross-implementation and negative tests.
 */
import { generateKeyPairSync } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { computeContentDigest, createNonce, NONCE_MAX_CHARS, NONCE_MIN_BYTES, signMessage } from '../src/index.js';
import type { HttpMessageView, ResolvedKey, SignatureAlgorithm, SignatureParamsInput, VerifyMessageSignatureOptions } from '../src/index.js';

/** A frozen clock: every test signs and verifies at this instant. */
export const NOW = 1_760_000_000;

/** What an AS signs on every request with a body. */
export const T8_REQUEST_COMPONENTS = ['@method', '@target-uri', 'authorization', 'content-digest', 'content-type'];

/** The parameters the edge accepts on an AS signature. */
export const EDGE_ALLOWED_PARAMS = ['created', 'nonce', 'keyid', 'alg', 'expires', 'tag'];

/** An AS's request-signing key pair as registered at onboarding. */
export interface AsKey {
  readonly kid: string;
  readonly alg: SignatureAlgorithm;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** A fresh AS key pair for `alg`. */
export function asKey(kid: string, alg: 'ecdsa-p256-sha256' | 'ed25519'): AsKey {
  const pair = alg === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { kid, alg, ...pair };
}

/** A T8 monitoring-event subscription request with its body. */
export function t8Request(body = Buffer.from('{"monitoringType":"LOSS_OF_CONNECTIVITY"}')): {
  message: HttpMessageView;
  body: Buffer;
} {
  return {
    body,
    message: {
      method: 'POST',
      targetUri: 'https://scef.example.net:8443/3gpp-monitoring-event/v1/as-1/subscriptions?flag=1',
      headers: {
        host: 'scef.example.net:8443',
        authorization: 'Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln',
        'content-type': 'application/json',
        'content-digest': computeContentDigest(body, 'sha-256'),
        'content-length': String(body.length),
      },
    },
  };
}

/** `message` with its field values replaced or added. */
export function withHeaders(message: HttpMessageView, headers: Record<string, string | string[] | undefined>): HttpMessageView {
  return { ...message, headers: { ...message.headers, ...headers } };
}

/** Signs a T8 request the way the profile says an AS does: label sig1, created, nonce, keyid. */
export function signAsRequest(message: HttpMessageView, key: AsKey, overrides: { components?: string[]; params?: Partial<SignatureParamsInput> } = {}): HttpMessageView {
  const out = signMessage(message, {
    label: 'sig1',
    components: overrides.components ?? T8_REQUEST_COMPONENTS,
    params: { created: NOW, nonce: createNonce(), keyid: key.kid, ...overrides.params },
    key: key.privateKey,
    alg: key.alg,
  });
  return withHeaders(message, { 'signature-input': out.signatureInput, signature: out.signature });
}

/** A key store of one AS: only that AS's kids resolve; `calls` records every lookup. */
export function keyStoreOf(...keys: AsKey[]): {
  resolveKey: (keyid: string) => Promise<ResolvedKey | undefined>;
  calls: string[];
} {
  const calls: string[] = [];
  return {
    calls,
    resolveKey: async keyid => {
      calls.push(keyid);
      const key = keys.find(k => k.kid === keyid);
      return key && { alg: key.alg, key: key.publicKey };
    },
  };
}

/** The edge's options for an AS request (T8-SECURITY-PROFILE section 4). */
export function edgeOptions(resolveKey: VerifyMessageSignatureOptions['resolveKey'], extra: Partial<VerifyMessageSignatureOptions> = {}): VerifyMessageSignatureOptions {
  return {
    label: 'sig1',
    requiredComponents: T8_REQUEST_COMPONENTS,
    requiredParams: ['created', 'nonce', 'keyid'],
    allowedParams: EDGE_ALLOWED_PARAMS,
    nonce: { minBytes: NONCE_MIN_BYTES, maxChars: NONCE_MAX_CHARS },
    validity: { nowSeconds: NOW, maxAgeSeconds: 60, maxFutureSeconds: 10 },
    resolveKey,
    ...extra,
  };
}
