import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect as http2Connect, constants as h2 } from 'node:http2';
import type { IncomingHttpHeaders } from 'node:http';
import type { RequestOptions } from 'node:https';
import type { ConnectionOptions, SecureVersion } from 'node:tls';
import { Agent, buildConnector, fetch as undiciFetch } from 'undici';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { issueAsClientCertificate } from '@aese/pki';
import type { KeyPairPem } from '@aese/pki';
import { AuthenticationServiceClient, SignatureProfile } from '@aese/protos/authentication/v1';
import type { TestMesh } from './mesh.js';

/** The name ASes reach the edge by: the T8 server certificate is issued for it. */
export const EDGE_HOSTNAME = 'localhost';

/** An onboarded SCS/AS as the AS itself holds it: its id, certificate and private key. */
export interface AsIdentity extends KeyPairPem {
  readonly scsAsId: string;
  readonly thumbprint: string;
}

/** The operator's admin client of the authentication service; close it after use. */
export function operatorAuthClient(mesh: TestMesh): MeshClient<AuthenticationServiceClient> {
  return createMeshClient(AuthenticationServiceClient, {
    address: mesh.env['AUTHENTICATION_ADDR'],
    tls: mesh.tls('operator'),
    serverId: mesh.id('authentication'),
  });
}

/**
 * Onboards an AS the way an operator does: a client certificate from the AS CA, and a
 * registration of its thumbprint and granted scopes through the admin RPC.
 */
export async function onboardAs(mesh: TestMesh, operator: MeshClient<AuthenticationServiceClient>, scsAsId: string, scopes: readonly string[]): Promise<AsIdentity> {
  const cert = await issueAsClientCertificate(mesh.stateDir, mesh.trustDomain, scsAsId);
  await operator.registerApplicationServer({
    scsAsId,
    certificateThumbprints: [cert.thumbprint],
    scopes: [...scopes],
    signingKeysJson: [],
    encryptionKeyJson: '',
    signatureProfile: SignatureProfile.SIGNATURE_PROFILE_REQUIRED,
  });
  return { scsAsId, ...cert };
}

/** The T8 server CA an AS trusts for the edge. */
export function t8CaPem(mesh: TestMesh): string {
  return readFileSync(mesh.layout.t8Ca.cert, 'utf8');
}

/**
 * An undici dispatcher for an AS: mTLS with its certificate, the T8 CA as the only trust anchor,
 * and every connection dialled to the edge's test port whatever port the URL names. The issuer
 * in tests is port-less (`https://localhost`, as behind a load balancer on 443), so this stands
 * in for that front: URLs, Host and SNI are exactly what a deployed AS would send.
 */
export function asDispatcher(edgePort: number, as: KeyPairPem, caPem: string): Agent {
  const connector = buildConnector({ ca: caPem, cert: as.certPem, key: as.keyPem, minVersion: 'TLSv1.3' });
  return new Agent({
    connect: (opts, callback) => connector({ ...opts, hostname: '127.0.0.1', port: String(edgePort), servername: EDGE_HOSTNAME }, callback),
  });
}

/** A fetch that goes through {@link asDispatcher}; fits oauth4webapi's and jose's `customFetch`. */
export function asFetch(dispatcher: Agent): (url: string, init?: RequestInit) => Promise<Response> {
  return async (url, init) => await undiciFetch(url, { ...(init as object), dispatcher });
}

/** A plain answer from the edge. */
export interface EdgeAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  readonly alpn: string | false;
}

/** TLS and request options of one raw request to the edge. */
export interface EdgeRequestOptions {
  readonly port: number;
  readonly ca: string;
  /** Client certificate and key; absent sends none. */
  readonly client?: KeyPairPem;
  /** SNI; default {@link EDGE_HOSTNAME}; `null` sends none. */
  readonly servername?: string | null;
  readonly maxVersion?: SecureVersion;
  readonly method?: string;
  readonly path?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Buffer;
  readonly timeoutMs?: number;
}

/**
 * One HTTP/1.1 request over a fresh TLS connection (no agent, no reuse). Resolves with the
 * answer, or rejects when no HTTP response arrives (a refused handshake, a dropped connection).
 */
export function edgeRequest(o: EdgeRequestOptions): Promise<EdgeAnswer> {
  return new Promise((resolve, reject) => {
    const options: RequestOptions & ConnectionOptions = {
      host: '127.0.0.1',
      port: o.port,
      // An empty servername sends no SNI (undefined would take it from the Host header).
      servername: o.servername === null ? '' : (o.servername ?? EDGE_HOSTNAME),
      ALPNProtocols: ['http/1.1'],
      ca: o.ca,
      ...(o.client ? { cert: o.client.certPem, key: o.client.keyPem } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      // The edge's certificate names localhost; without SNI the name is still checked against it.
      checkServerIdentity: () => undefined,
      agent: false,
      method: o.method ?? 'GET',
      path: o.path ?? '/',
      headers: { host: `${EDGE_HOSTNAME}:${o.port}`, ...o.headers },
      timeout: o.timeoutMs ?? 5_000,
    };
    const req = httpsRequest(options);
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.on('response', res => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const tls = req.socket as unknown as { alpnProtocol?: string | false } | null;
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8'), alpn: tls?.alpnProtocol ?? false });
      });
    });
    req.end(o.body);
  });
}

/** One HTTP/2 request over a fresh session; rejects when no response arrives. */
export function edgeRequestH2(o: EdgeRequestOptions): Promise<EdgeAnswer> {
  return new Promise((resolve, reject) => {
    let settled = false;
    // Without SNI the session is opened to the IP literal (node derives SNI from a host name).
    const origin = o.servername === null ? `https://127.0.0.1:${o.port}` : `https://${EDGE_HOSTNAME}:${o.port}`;
    const session = http2Connect(origin, {
      host: '127.0.0.1',
      port: o.port,
      servername: o.servername === null ? '' : (o.servername ?? EDGE_HOSTNAME),
      ca: o.ca,
      ...(o.client ? { cert: o.client.certPem, key: o.client.keyPem } : {}),
      ...(o.maxVersion ? { maxVersion: o.maxVersion } : {}),
      checkServerIdentity: () => undefined,
    });
    const fail = (err: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.destroy();
      reject(err);
    };
    const timer = setTimeout(() => fail(new Error('request timed out')), o.timeoutMs ?? 5_000);
    session.on('error', fail);
    session.on('close', () => fail(new Error('session closed before a response')));
    const stream = session.request({
      [h2.HTTP2_HEADER_METHOD]: o.method ?? 'GET',
      [h2.HTTP2_HEADER_PATH]: o.path ?? '/',
      [h2.HTTP2_HEADER_AUTHORITY]: `${EDGE_HOSTNAME}:${o.port}`,
      ...o.headers,
    });
    stream.on('error', fail);
    stream.on('close', () => fail(new Error(`stream closed before a response (code ${stream.rstCode})`)));
    stream.on('response', headers => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        const alpn = session.alpnProtocol ?? false;
        session.close();
        resolve({
          status: Number(headers[h2.HTTP2_HEADER_STATUS]),
          headers: headers,
          body: Buffer.concat(chunks).toString('utf8'),
          alpn,
        });
      });
    });
    stream.end(o.body);
  });
}
