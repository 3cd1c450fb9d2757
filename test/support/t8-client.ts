/**
 * An SCS/AS written only with libraries independent of the SCEF's code: oauth4webapi for the
 * token (tls_client_auth), the `http-message-signatures` package for RFC 9421 request signing
 * and response verification, jose for JWE, node:crypto for Content-Digest (RFC 9530). Tests use
 * it to drive the edge exactly as a third-party AS would, and to misbehave on purpose.
 */
import { expect } from 'chai';
import { createHash, createPublicKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { compactDecrypt, exportJWK, generateKeyPair } from 'jose';
import type { CryptoKey, JWK } from 'jose';
import type { NatsConnection } from 'nats';
import * as oauth from 'oauth4webapi';
import { createSigner, createVerifier, httpbis } from 'http-message-signatures';
import type { Request as SignedRequest } from 'http-message-signatures';
import { request as undiciRequest } from 'undici';
import type { Agent } from 'undici';
import { readAuditTrail } from '@aese/events';
import type { AuditEvent } from '@aese/events';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { issueAsClientCertificate } from '@aese/pki';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { SignatureProfile } from '@aese/protos/authentication/v1';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import { asDispatcher, asFetch, EDGE_HOSTNAME, t8CaPem } from './as-client.ts';
import type { AsIdentity } from './as-client.ts';
import type { TestMesh } from './mesh.ts';

/** The issuer of the T8 tests: port-less, as behind a front on 443 (see as-client.ts). */
export const T8_ISSUER = `https://${EDGE_HOSTNAME}`;
export const MONITORING_EVENT = '3gpp-monitoring-event';
export const AS_SESSION_WITH_QOS = '3gpp-as-session-with-qos';

/** The RFC 9421 algorithms of the T8 profile. */
export type AsSigningAlg = 'ecdsa-p256-sha256' | 'ed25519';

/** A request-signing key of an AS: private half for the AS, public JWK for the registry. */
export interface AsSigningKey {
  readonly kid: string;
  readonly alg: AsSigningAlg;
  readonly privateKey: KeyObject;
  readonly publicJwk: Record<string, string>;
}

/** An onboarded AS with everything its own software holds. */
export interface T8As extends AsIdentity {
  readonly signing: AsSigningKey;
  /** Its JWE decryption key, when it registered an encryption key. */
  readonly decryption?: { readonly kid: string; readonly privateKey: CryptoKey };
}

/** A fresh request-signing key pair. */
export function newSigningKey(kid: string, alg: AsSigningAlg = 'ecdsa-p256-sha256'): AsSigningKey {
  const pair = alg === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const publicJwk = { ...(pair.publicKey.export({ format: 'jwk' }) as Record<string, string>), kid };
  return { kid, alg, privateKey: pair.privateKey, publicJwk };
}

export interface OnboardOptions {
  readonly scopes: readonly string[];
  readonly alg?: AsSigningAlg;
  /** Registers an ECDH-ES P-256 encryption key (default true). */
  readonly encryption?: boolean;
  readonly profile?: 'required' | 'optional';
}

/** Onboards an AS the way an operator does, with a request-signing key and (optionally) an encryption key. */
export async function onboardT8As(mesh: TestMesh, operator: MeshClient<AuthenticationServiceClient>, scsAsId: string, options: OnboardOptions): Promise<T8As> {
  const cert = await issueAsClientCertificate(mesh.stateDir, mesh.trustDomain, scsAsId);
  const signing = newSigningKey(`${scsAsId}-sig-1`, options.alg);
  let decryption: T8As['decryption'];
  let encryptionKeyJson = '';
  if (options.encryption !== false) {
    const pair = await generateKeyPair('ECDH-ES+A256KW', { crv: 'P-256', extractable: true });
    const kid = `${scsAsId}-enc-1`;
    encryptionKeyJson = JSON.stringify({ ...(await exportJWK(pair.publicKey)), kid });
    decryption = { kid, privateKey: pair.privateKey };
  }
  await operator.registerApplicationServer({
    scsAsId,
    certificateThumbprints: [cert.thumbprint],
    scopes: [...options.scopes],
    signingKeysJson: [JSON.stringify(signing.publicJwk)],
    encryptionKeyJson,
    signatureProfile: options.profile === 'optional' ? SignatureProfile.SIGNATURE_PROFILE_OPTIONAL : SignatureProfile.SIGNATURE_PROFILE_REQUIRED,
  });
  return { scsAsId, ...cert, signing, ...(decryption ? { decryption } : {}) };
}

/** One API grant of an AS (Cedar entity JSON, see services/authorization/README.md). */
export interface ApiGrant {
  readonly operations: readonly string[];
  readonly categories: readonly string[];
  readonly targets: readonly string[];
  readonly anyTarget: boolean;
  readonly encryptCategories?: readonly string[];
  readonly locationGranularity?: 'exact' | 'cell' | 'ta';
}

/** The grants of one AS: per API, and an optional rate limit obligation. */
export interface AsGrants {
  readonly apis: Readonly<Record<string, ApiGrant>>;
  readonly rateLimitPerSecond?: number;
}

/**
 * Makes these the grants of the given ASes (others' grants are kept), through the operator's
 * ApplyPolicies RPC: the policy set stays as it is, the entities are replaced for these ASes.
 */
export async function grantAccess(mesh: TestMesh, grants: Readonly<Record<string, AsGrants>>): Promise<number> {
  const client = createMeshClient(AuthorizationServiceClient, {
    address: mesh.env['AUTHORIZATION_ADDR'],
    tls: mesh.tls('operator'),
    serverId: mesh.id('authorization'),
  });
  try {
    const current = await client.getPolicies({});
    const entities = (JSON.parse(current.entitiesJson || '[]') as { uid: { type: string; id: string } }[]).filter(e => !(e.uid.type === 'Aese::Application' && e.uid.id in grants));
    for (const [scsAsId, g] of Object.entries(grants)) {
      entities.push({
        uid: { type: 'Aese::Application', id: scsAsId },
        attrs: g.rateLimitPerSecond === undefined ? {} : { rateLimitPerSecond: g.rateLimitPerSecond },
        parents: [],
        tags: g.apis,
      } as never);
    }
    const out = await client.applyPolicies({ policies: current.policies, entitiesJson: JSON.stringify(entities), expectedVersion: current.version });
    return out.version;
  } finally {
    client.close();
  }
}

/** What {@link T8Client.prepare} builds: a request ready to send, and to send again (a replay). */
export interface PreparedRequest {
  readonly method: string;
  /** Absolute URL as the AS sees it (`https://localhost/3gpp-...`). */
  readonly url: string;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer | undefined;
  readonly nonce: string | undefined;
  readonly created: number | undefined;
  /** The W3C trace id sent in `traceparent`: the audit trail records it. */
  readonly traceId: string;
}

/** A signature to put on a request; every field has the profile's value by default. */
export interface SignSpec {
  readonly components?: readonly string[];
  /** Signature parameters, in order (default created, nonce, keyid). */
  readonly params?: readonly string[];
  readonly nonce?: string;
  /** `created`, seconds since the epoch (default now). */
  readonly created?: number;
  readonly alg?: string;
  readonly tag?: string;
  readonly expires?: number;
  /** Extra parameters (e.g. `crit`). */
  readonly extra?: Readonly<Record<string, string>>;
  /** Sign with this key instead of the AS's own (another AS's key, say). */
  readonly key?: AsSigningKey;
  /** Put this keyid in the signature instead of the signing key's. */
  readonly keyid?: string;
}

export interface RequestSpec {
  readonly method: string;
  /** Path and query, e.g. `/3gpp-monitoring-event/v1/as-1/subscriptions`. */
  readonly path: string;
  readonly body?: unknown;
  /** Raw body bytes (a body JSON.stringify cannot produce). */
  readonly rawBody?: string | Buffer;
  readonly contentType?: string;
  /** The access token; `null` sends none, an array sends several Authorization lines. */
  readonly token?: string | readonly string[] | null;
  /** `false` sends the request unsigned. */
  readonly sign?: SignSpec | false;
  readonly accept?: string;
  /** `Content-Digest` algorithm (default sha-256), or a value to send as is. */
  readonly digest?: 'sha-256' | 'sha-512' | { readonly value: string };
  readonly headers?: Readonly<Record<string, string | string[]>>;
}

/** An answer from the edge. */
export interface T8Reply {
  readonly status: number;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
  readonly text: string;
  json<T = unknown>(): T;
}

function header(reply: { headers: Record<string, string | string[]> }, name: string): string | undefined {
  const v = reply.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** The `Content-Digest` value of a body, computed here with node:crypto (RFC 9530). */
export function contentDigest(body: Buffer, alg: 'sha-256' | 'sha-512' = 'sha-256'): string {
  return `${alg}=:${createHash(alg === 'sha-256' ? 'sha256' : 'sha512')
    .update(body)
    .digest('base64')}:`;
}

const SCEF_ALGS: Readonly<Record<string, string>> = { ES256: 'ecdsa-p256-sha256', EdDSA: 'ed25519' };

/** The AS's HTTP client: token, signed requests, verification of the SCEF's responses. */
export class T8Client {
  readonly dispatcher: Agent;
  private readonly fetch: (url: string, init?: RequestInit) => Promise<Response>;
  private tokens = new Map<string, string>();
  private jwks: JWK[] = [];

  constructor(
    readonly as: T8As,
    edgePort: number,
    caPem: string,
  ) {
    this.dispatcher = asDispatcher(edgePort, as, caPem);
    this.fetch = asFetch(this.dispatcher);
  }

  static forMesh(mesh: TestMesh, as: T8As, edgePort = mesh.ports['edge']): T8Client {
    return new T8Client(as, edgePort, t8CaPem(mesh));
  }

  /** An access token for `scope` from the token endpoint (oauth4webapi, tls_client_auth); cached. */
  async token(scope: string = MONITORING_EVENT): Promise<string> {
    const hit = this.tokens.get(scope);
    if (hit) return hit;
    const issuer = new URL(T8_ISSUER);
    const options = { [oauth.customFetch]: this.fetch };
    const server = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { algorithm: 'oauth2', ...options }));
    const client: oauth.Client = { client_id: this.as.scsAsId };
    const response = await oauth.clientCredentialsGrantRequest(server, client, oauth.TlsClientAuth(), { scope }, options);
    const result = await oauth.processClientCredentialsResponse(server, client, response);
    this.tokens.set(scope, result.access_token);
    return result.access_token;
  }

  /** Builds (and by default signs) a request; send it with {@link send}, as often as a test likes. */
  async prepare(spec: RequestSpec): Promise<PreparedRequest> {
    const url = `${T8_ISSUER}${spec.path}`;
    const body = spec.rawBody !== undefined ? Buffer.from(spec.rawBody) : spec.body === undefined ? undefined : Buffer.from(JSON.stringify(spec.body));
    const traceId = randomBytes(16).toString('hex');
    const headers: Record<string, string | string[]> = { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` };
    const token = spec.token === undefined ? await this.token() : spec.token;
    if (typeof token === 'string') headers['authorization'] = `Bearer ${token}`;
    else if (Array.isArray(token)) headers['authorization'] = token.map(t => `Bearer ${t}`);
    if (body !== undefined) {
      headers['content-type'] = spec.contentType ?? 'application/json';
      const d = spec.digest ?? 'sha-256';
      headers['content-digest'] = typeof d === 'string' ? contentDigest(body, d) : d.value;
    } else if (spec.contentType !== undefined) {
      headers['content-type'] = spec.contentType;
    }
    if (spec.accept !== undefined) headers['accept'] = spec.accept;
    Object.assign(headers, spec.headers);
    if (spec.sign === false) return { method: spec.method, url, headers, body, nonce: undefined, created: undefined, traceId };

    const sign = spec.sign ?? {};
    const key = sign.key ?? this.as.signing;
    const nonce = sign.nonce ?? randomBytes(16).toString('base64url');
    const created = sign.created ?? Math.floor(Date.now() / 1000);
    const components =
      sign.components ?? (body === undefined ? ['@method', '@target-uri', 'authorization'] : ['@method', '@target-uri', 'authorization', 'content-digest', 'content-type']);
    const params = [
      ...(sign.params ?? ['created', 'nonce', 'keyid']),
      ...(sign.alg ? ['alg'] : []),
      ...(sign.tag ? ['tag'] : []),
      ...(sign.expires ? ['expires'] : []),
      ...Object.keys(sign.extra ?? {}),
    ];
    const signed = await httpbis.signMessage(
      {
        key: createSigner(key.privateKey, key.alg, key.kid),
        name: 'sig1',
        fields: [...components],
        params,
        paramValues: {
          created: new Date(created * 1000),
          nonce,
          keyid: sign.keyid ?? key.kid,
          ...(sign.alg ? { alg: sign.alg } : {}),
          ...(sign.tag ? { tag: sign.tag } : {}),
          ...(sign.expires ? { expires: new Date(sign.expires * 1000) } : {}),
          ...sign.extra,
        },
      },
      { method: spec.method, url, headers },
    );
    return { method: spec.method, url, headers: { ...signed.headers }, body, nonce, created, traceId };
  }

  /** Sends a prepared request over the AS's mTLS connection pool. */
  async send(prepared: PreparedRequest): Promise<T8Reply> {
    const res = await undiciRequest(prepared.url, {
      method: prepared.method as 'GET',
      headers: prepared.headers,
      ...(prepared.body !== undefined ? { body: prepared.body } : {}),
      dispatcher: this.dispatcher,
    });
    const body = Buffer.from(await res.body.arrayBuffer());
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = v;
    const text = body.toString('utf8');
    return { status: res.statusCode, headers, body, text, json: <T>() => JSON.parse(text) as T };
  }

  async call(spec: RequestSpec): Promise<{ prepared: PreparedRequest; reply: T8Reply }> {
    const prepared = await this.prepare(spec);
    return { prepared, reply: await this.send(prepared) };
  }

  /** The SCEF's published keys, fetched over HTTPS from the JWKS the metadata names. */
  async publishedKeys(refresh = false): Promise<JWK[]> {
    if (refresh || this.jwks.length === 0) {
      const res = await this.fetch(`${T8_ISSUER}/.well-known/jwks.json`);
      if (res.status !== 200) throw new Error(`JWKS answered ${res.status}`);
      this.jwks = ((await res.json()) as { keys: JWK[] }).keys;
    }
    return this.jwks;
  }

  /**
   * Verifies the SCEF's signature on a response with the independent library and the published
   * JWKS, and its Content-Digest with node:crypto: the components of the T8 profile section 4,
   * and the request's signature (`;req`) when the request was signed and served (a refusal of a
   * bad request signature cannot cover it). Resolves to the keyid.
   */
  async verifyResponse(reply: T8Reply, request: PreparedRequest, options: { bound?: boolean } = {}): Promise<string> {
    const digest = header(reply, 'content-digest');
    if (digest !== contentDigest(reply.body)) throw new Error('response Content-Digest does not match its body');
    const input = header(reply, 'signature-input') ?? '';
    const keyid = /keyid="([^"]+)"/.exec(input)?.[1];
    if (!keyid) throw new Error('response is not signed');
    let jwk = (await this.publishedKeys()).find(k => k.kid === keyid);
    if (!jwk) jwk = (await this.publishedKeys(true)).find(k => k.kid === keyid);
    if (!jwk || !jwk.alg || !SCEF_ALGS[jwk.alg]) throw new Error(`keyid ${keyid} is not in the published JWKS`);
    const alg = SCEF_ALGS[jwk.alg];
    const key = createPublicKey({ key: jwk as never, format: 'jwk' });
    const signedRequest = request.headers['signature'] !== undefined || request.headers['Signature'] !== undefined;
    const bound = options.bound ?? (signedRequest && reply.status < 400);
    const requiredFields = ['@status', 'content-digest', ...(header(reply, 'content-type') ? ['content-type'] : []), ...(bound ? ['signature'] : [])];
    const ok = await httpbis.verifyMessage(
      {
        keyLookup: async params => (params.keyid === keyid ? { id: keyid, algs: [alg], verify: createVerifier(key, alg) } : null),
        requiredFields,
        requiredParams: ['created', 'keyid'],
        tolerance: 5,
      },
      { status: reply.status, headers: reply.headers },
      { method: request.method, url: request.url, headers: request.headers } satisfies SignedRequest,
    );
    if (ok !== true) throw new Error('the response signature does not verify');
    if (bound && !/"signature";req;key="sig1"/.test(input)) throw new Error('the response signature does not cover the request signature');
    return keyid;
  }

  /** Decrypts a JWE response body with the AS's key (jose); returns the plaintext JSON and the header. */
  async decrypt(reply: T8Reply): Promise<{ json: unknown; header: Record<string, unknown> }> {
    if (!this.as.decryption) throw new Error('this AS registered no encryption key');
    const { plaintext, protectedHeader } = await compactDecrypt(reply.text, this.as.decryption.privateKey);
    return { json: JSON.parse(Buffer.from(plaintext).toString('utf8')), header: protectedHeader };
  }

  /** POSTs a form (the OAuth endpoints) over the AS's mTLS connection pool. */
  async postForm(path: string, form: Readonly<Record<string, string>>): Promise<{ status: number; text: string; headers: Record<string, string> }> {
    const res = await this.fetch(`${T8_ISSUER}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
    return { status: res.status, text: await res.text(), headers: Object.fromEntries(res.headers) };
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}

/**
 * The same request under a new trace id (`traceparent` is not signed): each send of a tampered
 * copy is then its own request in the audit trail.
 */
export function retraced(p: PreparedRequest): PreparedRequest {
  const traceId = randomBytes(16).toString('hex');
  return { ...p, traceId, headers: { ...p.headers, traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` } };
}

/** Reads the audit trail of a mesh (the AESE_AUDIT stream) for assertions. */
export class AuditReader {
  private constructor(private readonly nc: NatsConnection) {}

  static async open(mesh: TestMesh): Promise<AuditReader> {
    return new AuditReader(await mesh.natsConnect('operator'));
  }

  async all(): Promise<AuditEvent[]> {
    return readAuditTrail(this.nc);
  }

  /** The events of one trace id, waiting up to `timeoutMs` for at least `atLeast` of them. */
  async byTrace(traceId: string, atLeast = 1, timeoutMs = 3_000): Promise<AuditEvent[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.all()).filter(e => e.traceId === traceId);
      if (found.length >= atLeast || Date.now() > until) return found;
      await new Promise(r => setTimeout(r, 50));
    }
  }

  /** Waits until events matching `match` are there (or the time is up) and returns them. */
  async waitFor(match: (e: AuditEvent) => boolean, atLeast = 1, timeoutMs = 3_000): Promise<AuditEvent[]> {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const found = (await this.all()).filter(match);
      if (found.length >= atLeast || Date.now() > until) return found;
      await new Promise(r => setTimeout(r, 50));
    }
  }

  async close(): Promise<void> {
    await this.nc.drain();
  }
}

/** How many T8 calls capability-exposure executed for an AS, from its log (one line per Invoke). */
export function invokeCount(mesh: TestMesh, scsAsId: string): number {
  return mesh.logs.filter(l => l.includes('"t8 invoke"') && l.includes(`"scsAsId":"${scsAsId}"`)).length;
}

/** A MonitoringEvent LOCATION_REPORTING subscription of one UE, three reports, to the test receiver's address. */
export function locationSubscription(externalId: string): Record<string, unknown> {
  return { externalId, notificationDestination: 'https://127.0.0.1:9443/notify', monitoringType: 'LOCATION_REPORTING', maximumNumberOfReports: 3 };
}

/** The path of an AS's MonitoringEvent subscriptions. */
export function monitoringCollection(c: T8Client): string {
  return `/${MONITORING_EVENT}/v1/${c.as.scsAsId}/subscriptions`;
}

/** How many MonitoringEvent subscriptions the AS has, read with a signed GET of its collection. */
export async function monitoringSubscriptionCount(c: T8Client): Promise<number> {
  const { reply } = await c.call({ method: 'GET', path: monitoringCollection(c) });
  expect(reply.status, reply.text).to.equal(200);
  return reply.json<unknown[]>().length;
}

/** The simulated core's identifiers of UE i (services/capability-exposure, SimulatedCore, seed-independent). */
export function simulatedUe(i: number): { externalId: string; msisdn: string } {
  return { externalId: `ue${i}@scef.test`, msisdn: `33610${String(i).padStart(6, '0')}` };
}

/** What a refused T8 request must look like (status, ProblemDetails cause, audit reason). */
export interface ExpectedDenial {
  readonly status: number;
  readonly cause: string;
  /** The exact reason in the edge's audit event. */
  readonly reason: string;
  /** The audited actor (default: the client's AS). */
  readonly actor?: string;
}

/**
 * Asserts a refusal by the edge: status, ProblemDetails with the cause, no stack trace, a
 * response signature that verifies against the JWKS (the AS was authenticated), and exactly one
 * audit event of the edge for this request's trace id with the reason.
 */
export async function expectEdgeDenial(client: T8Client, audit: AuditReader, out: { prepared: PreparedRequest; reply: T8Reply }, expected: ExpectedDenial): Promise<void> {
  const { reply, prepared } = out;
  if (reply.status !== expected.status) throw new Error(`expected ${expected.status}, got ${reply.status}: ${reply.text}`);
  if (reply.headers['content-type'] !== 'application/problem+json') throw new Error(`not ProblemDetails: ${String(reply.headers['content-type'])}`);
  const problem = reply.json<Record<string, unknown>>();
  if (problem['status'] !== expected.status || problem['cause'] !== expected.cause || typeof problem['title'] !== 'string' || typeof problem['detail'] !== 'string') {
    throw new Error(`unexpected ProblemDetails ${reply.text}`);
  }
  if (/\n\s+at |node:internal|\.ts:\d+/.test(reply.text)) throw new Error('stack trace in an error body');
  await client.verifyResponse(reply, prepared);
  await audit.byTrace(prepared.traceId);
  // Exactly one: a second event of the same request would follow the first at once; this wait
  // is the window in which it must not appear.
  await new Promise(r => setTimeout(r, 100));
  const events = (await audit.byTrace(prepared.traceId)).filter(e => e.service === 'edge');
  const actor = expected.actor ?? client.as.scsAsId;
  if (events.length !== 1) throw new Error(`expected one edge audit event for the request, found ${events.length}: ${JSON.stringify(events)}`);
  const e = events[0];
  if (e.action !== 't8.request' || e.decision !== 'deny' || e.reason !== expected.reason || e.actor !== actor) {
    throw new Error(`unexpected audit event ${JSON.stringify(e)} (wanted reason ${expected.reason}, actor ${actor})`);
  }
}
