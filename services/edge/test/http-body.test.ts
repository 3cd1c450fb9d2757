/**
 * readBody, as the T8 listener sees requests (node's HTTP/2 server with the HTTP/1.1 fallback,
 * over TLS): a request known to have no body gets its empty body at once, without waiting for the
 * parser; every other request has its body read, chunked or not, and bounded.
 */
import { connect as http2Connect } from 'node:http2';
import type { ClientHttp2Session } from 'node:http2';
import { createSecureServer } from 'node:http2';
import type { Http2SecureServer } from 'node:http2';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSelfSignedCa, issueCertificate } from '@aese/pki';
import type { KeyPairPem } from '@aese/pki';
import { expect } from 'chai';
import { BodyError, readBody } from '../src/http.ts';

interface Seen {
  readonly immediate: boolean;
  readonly body?: string;
  readonly error?: string;
}

describe('edge http: readBody', () => {
  let ca: KeyPairPem;
  let server: Http2SecureServer;
  let port: number;
  const seen: Seen[] = [];

  before(async () => {
    ca = await createSelfSignedCa('body test CA');
    const leaf = await issueCertificate(ca, { subject: 'CN=localhost', dnsNames: ['localhost'], extendedKeyUsages: ['serverAuth'] });
    server = createSecureServer({ key: leaf.keyPem, cert: leaf.certPem, allowHTTP1: true }, (req, res) => {
      let read: Buffer | Promise<Buffer>;
      try {
        read = readBody(req, 16, 2000);
      } catch (err) {
        seen.push({ immediate: true, error: (err as BodyError).kind });
        res.end();
        return;
      }
      const immediate = !(read instanceof Promise);
      Promise.resolve(read).then(
        body => {
          seen.push({ immediate, body: body.toString() });
          res.end();
        },
        (err: unknown) => {
          seen.push({ immediate, error: err instanceof BodyError ? err.kind : String(err) });
          res.end();
        },
      );
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });

  after(async () => {
    await new Promise(resolve => server.close(resolve));
  });

  beforeEach(() => {
    seen.length = 0;
  });

  const h1 = (method: string, headers: Record<string, string>, chunks: string[]): Promise<void> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port, servername: 'localhost', ca: ca.certPem, method, path: '/x', headers, agent: false }, res => {
        res.resume();
        res.on('end', resolve);
      });
      req.on('error', reject);
      for (const c of chunks) req.write(c);
      req.end();
    });

  const h2 = async (method: string, body: string | undefined): Promise<void> => {
    const session: ClientHttp2Session = http2Connect(`https://127.0.0.1:${port}`, { ca: ca.certPem, servername: 'localhost' });
    try {
      await new Promise<void>((resolve, reject) => {
        const stream = session.request({ ':method': method, ':path': '/x' }, { endStream: body === undefined });
        stream.on('response', () => undefined);
        stream.resume();
        stream.on('end', resolve);
        stream.on('error', reject);
        if (body !== undefined) stream.end(body);
      });
    } finally {
      session.close();
    }
  };

  it('HTTP/1.1 without Content-Length or Transfer-Encoding: the empty body at once', async () => {
    await h1('GET', {}, []);
    expect(seen).to.deep.equal([{ immediate: true, body: '' }]);
  });

  it('HTTP/1.1 with a body, declared or chunked, is read; a chunked one over the cap is refused (control)', async () => {
    await h1('POST', { 'content-length': '7' }, ['{"a":1}']);
    await h1('POST', { 'transfer-encoding': 'chunked' }, ['{"a"', ':2}']);
    await h1('POST', { 'transfer-encoding': 'chunked' }, ['{"a":"', 'x'.repeat(20), '"}']);
    expect(seen).to.deep.equal([
      { immediate: false, body: '{"a":1}' },
      { immediate: false, body: '{"a":2}' },
      { immediate: false, error: 'too-large' },
    ]);
  });

  it('a declared Content-Length over the cap is refused before anything is read', async () => {
    await h1('POST', { 'content-length': '17' }, ['x'.repeat(17)]);
    expect(seen).to.deep.equal([{ immediate: true, error: 'too-large' }]);
  });

  it('HTTP/2: a stream that ended with its headers has the empty body at once; one with DATA is read', async () => {
    await h2('GET', undefined);
    await h2('POST', '{"b":3}');
    expect(seen).to.deep.equal([
      { immediate: true, body: '' },
      { immediate: false, body: '{"b":3}' },
    ]);
  });
});
