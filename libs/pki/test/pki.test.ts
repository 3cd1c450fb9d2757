import { createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer } from 'node:tls';
import { expect } from 'chai';
import {
  certificateThumbprint,
  initPki,
  issueAsClientCertificate,
  issueCertificate,
  issueCrl,
  MESH_SERVICES,
  parseSpiffeId,
  peerSpiffeId,
  pemToDer,
  pkiLayout,
  readMeshTlsMaterial,
  readPem,
  readPkiMetadata,
  readT8ServerTlsMaterial,
  spiffeId,
  spiffeIdsOfPeer,
} from '../src/index.js';
import type { KeyPairPem, PkiLayout } from '../src/index.js';

const TD = 'scef.test';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';

function certOf(path: string): X509Certificate {
  return new X509Certificate(readFileSync(path));
}

function pairOf(paths: { cert: string; key: string }): KeyPairPem {
  return { certPem: readPem(paths.cert), keyPem: readPem(paths.key) };
}

function mode(path: string): number {
  return statSync(path).mode & 0o777;
}

interface HandshakeResult {
  /** The client got the server's application data: both sides accepted the handshake. */
  readonly ok: boolean;
  readonly serverError?: Error & { code?: string };
  readonly clientError?: Error & { code?: string };
  readonly peerIds: string[];
  /** With `diagnose`, the server's verification error code (e.g. CERT_HAS_EXPIRED), if any. */
  readonly authorizationError?: string;
}

/**
 * Runs one T8-style TLS 1.3 handshake on 127.0.0.1:0: the server is the edge's T8 listener
 * (edge-t8 cert, client certs required from the AS CA), the client presents `client`. With
 * `diagnose` the server does not reject, so the test can read why OpenSSL refused the client
 * (node only reports ECONNRESET to a rejecting TLS 1.3 server).
 */
function t8Handshake(layout: PkiLayout, client: KeyPairPem, opts: { clientCa?: string; crl?: string; diagnose?: boolean } = {}): Promise<HandshakeResult> {
  const material = readT8ServerTlsMaterial(layout);
  return new Promise((resolve, reject) => {
    let serverError: Error | undefined;
    let clientError: Error | undefined;
    let peerIds: string[] = [];
    let authorizationError: string | undefined;
    let received = '';
    const server = createServer(
      {
        cert: material.certPem,
        key: material.keyPem,
        ca: material.clientCaPem,
        requestCert: true,
        rejectUnauthorized: opts.diagnose !== true,
        minVersion: 'TLSv1.3',
        ...(opts.crl ? { crl: opts.crl } : {}),
      },
      socket => {
        peerIds = spiffeIdsOfPeer(socket.getPeerCertificate());
        if (socket.authorizationError) authorizationError = String(socket.authorizationError);
        socket.end(socket.authorized ? 'ok' : 'unauthorized');
      },
    );
    server.on('tlsClientError', err => {
      serverError = err;
    });
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      const socket = connect({
        host: '127.0.0.1',
        port,
        servername: 'localhost',
        ca: opts.clientCa ?? readPem(layout.t8Ca.cert),
        cert: client.certPem,
        key: client.keyPem,
        minVersion: 'TLSv1.3',
      });
      socket.setEncoding('utf8');
      socket.on('data', (chunk: string) => {
        received += chunk;
      });
      socket.on('error', (err: Error) => {
        clientError = err;
      });
      socket.on('close', () => {
        server.close(() =>
          resolve({
            ok: received === 'ok',
            peerIds,
            ...(authorizationError ? { authorizationError } : {}),
            ...(serverError ? { serverError } : {}),
            ...(clientError ? { clientError } : {}),
          }),
        );
      });
    });
  });
}

describe('@aese/pki', function () {
  this.timeout(20_000);

  let tmp: string;
  let stateDir: string;
  let layout: PkiLayout;

  before(async () => {
    tmp = mkdtempSync(join(tmpdir(), 'aese-pki-test-'));
    stateDir = join(tmp, 'state');
    const result = await initPki({ stateDir, trustDomain: TD });
    expect(result.created).to.equal(true);
    layout = result.layout;
  });

  after(() => {
    rmSync(tmp, { recursive: true, force: true });
  });

  describe('spiffe IDs', () => {
    it('builds spiffe://<td>/<kind>/<name>', () => {
      expect(spiffeId(TD, 'svc', 'edge')).to.equal('spiffe://scef.test/svc/edge');
      expect(spiffeId(TD, 'as', 'Acme_AS-1.x')).to.equal('spiffe://scef.test/as/Acme_AS-1.x');
      expect(spiffeId(TD, 'operator', 'admin')).to.equal('spiffe://scef.test/operator/admin');
    });

    it('throws TypeError on a malformed trust domain, kind or name', () => {
      for (const [td, kind, name] of [
        ['Scef.Test', 'svc', 'edge'],
        ['', 'svc', 'edge'],
        ['td/x', 'svc', 'edge'],
        [TD, 'user', 'edge'],
        [TD, 'as', ''],
        [TD, 'as', 'a/b'],
        [TD, 'as', 'a b'],
        [TD, 'as', '..'],
        [TD, 'as', 'x'.repeat(65)],
        [TD, 'as', 'a, URI:spiffe://scef.test/svc/edge'],
      ] as const) {
        expect(() => spiffeId(td, kind as 'svc', name), `${td} ${kind} ${name}`).to.throw(TypeError);
      }
    });

    it('parses its own IDs and nothing else', () => {
      expect(parseSpiffeId('spiffe://scef.test/as/acme')).to.deep.equal({ trustDomain: TD, kind: 'as', name: 'acme' });
      expect(parseSpiffeId('spiffe://scef.test/as/acme/x')).to.equal(undefined);
      expect(parseSpiffeId('spiffe://scef.test/db/acme')).to.equal(undefined);
      expect(parseSpiffeId('https://scef.test/as/acme')).to.equal(undefined);
    });

    it('spiffeIdsOfPeer returns the spiffe URI SANs of a node peer certificate', () => {
      expect(spiffeIdsOfPeer({ subjectaltname: 'DNS:localhost, URI:spiffe://td/svc/edge' })).to.deep.equal(['spiffe://td/svc/edge']);
      expect(spiffeIdsOfPeer({ subjectaltname: 'URI:https://x/y, IP Address:127.0.0.1' })).to.deep.equal([]);
      expect(spiffeIdsOfPeer({})).to.deep.equal([]);
      expect(peerSpiffeId({ subjectaltname: 'URI:spiffe://td/svc/a, URI:spiffe://td/svc/b' })).to.equal(undefined);
      expect(peerSpiffeId({ subjectaltname: 'URI:spiffe://td/svc/a' })).to.equal('spiffe://td/svc/a');
    });

    it('spiffeIdsOfPeer is not fooled by a SAN that embeds ", URI:" (node quotes it)', async () => {
      const forged = await issueCertificate(pairOf(layout.asCa), {
        subject: 'CN=forged',
        dnsNames: ['localhost'],
        uriSans: ['spiffe://scef.test/as/a, URI:spiffe://scef.test/svc/edge'],
        extendedKeyUsages: ['clientAuth'],
      });
      const san = new X509Certificate(forged.certPem).subjectAltName;
      expect(san).to.include('URI:"spiffe://');
      expect(spiffeIdsOfPeer({ subjectaltname: san! })).to.deep.equal([]);
    });
  });

  describe('PEM and thumbprints', () => {
    it('certificateThumbprint is the base64url SHA-256 of the DER (x5t#S256)', () => {
      const cert = certOf(layout.services.edge.cert);
      const manual = createHash('sha256').update(cert.raw).digest('base64url');
      expect(certificateThumbprint(pemToDer(readPem(layout.services.edge.cert)))).to.equal(manual);
      expect(manual).to.match(/^[A-Za-z0-9_-]{43}$/);
    });

    it('pemToDer and readPem refuse non-PEM input', () => {
      expect(() => pemToDer('hello')).to.throw(TypeError);
      expect(() => readPem(join(tmp, 'missing.pem'))).to.throw(Error, /missing\.pem/);
    });
  });

  describe('initPki', () => {
    it('creates every file of the layout, with absolute paths', () => {
      expect(layout.root).to.equal(join(stateDir, 'pki'));
      for (const p of [layout.meshCa, layout.asCa, layout.t8Ca, layout.operator, layout.edgeT8, ...MESH_SERVICES.map(n => layout.services[n])]) {
        expect(statSync(p.cert).isFile()).to.equal(true);
        expect(statSync(p.key).isFile()).to.equal(true);
      }
      const meta = readPkiMetadata(layout)!;
      expect(meta.trustDomain).to.equal(TD);
      expect(Number.isNaN(Date.parse(meta.createdAt))).to.equal(false);
      expect(pkiLayout(join(tmp, 'state', '.', '')).metadata).to.equal(layout.metadata);
    });

    it('writes private keys 0600, certificates 0644, folders 0700', () => {
      for (const name of MESH_SERVICES) {
        expect(mode(layout.services[name].key), name).to.equal(0o600);
        expect(mode(layout.services[name].cert), name).to.equal(0o644);
      }
      for (const p of [layout.meshCa, layout.asCa, layout.t8Ca, layout.operator, layout.edgeT8]) {
        expect(mode(p.key), p.key).to.equal(0o600);
      }
      for (const dir of [layout.root, layout.servicesDir, layout.operatorDir]) expect(mode(dir), dir).to.equal(0o700);
    });

    it('is idempotent: a second call creates nothing and changes no file', async () => {
      const files = [layout.metadata, layout.meshCa.cert, layout.meshCa.key, layout.services.edge.key, layout.edgeT8.cert];
      const before = files.map(f => ({ data: readFileSync(f, 'utf8'), mtime: statSync(f).mtimeMs }));
      const again = await initPki({ stateDir, trustDomain: TD });
      expect(again.created).to.equal(false);
      expect(again.layout).to.deep.equal(layout);
      files.forEach((f, i) => {
        expect(readFileSync(f, 'utf8'), f).to.equal(before[i].data);
        expect(statSync(f).mtimeMs, f).to.equal(before[i].mtime);
      });
    });

    it('refuses an existing PKI of another trust domain, naming both', async () => {
      let err: unknown;
      try {
        await initPki({ stateDir, trustDomain: 'other.test' });
      } catch (e: unknown) {
        err = e;
      }
      expect(err).to.be.instanceOf(Error);
      expect((err as Error).message)
        .to.include('"scef.test"')
        .and.to.include('"other.test"');
    });

    it('throws TypeError on a malformed trust domain', async () => {
      let err: unknown;
      try {
        await initPki({ stateDir: join(tmp, 'bad'), trustDomain: 'Bad Domain' });
      } catch (e: unknown) {
        err = e;
      }
      expect(err).to.be.instanceOf(TypeError);
    });

    it('issues the T8 server certificate for the given host names', async () => {
      const { layout: other } = await initPki({
        stateDir: join(tmp, 'hosts'),
        trustDomain: TD,
        t8Hostnames: ['scef.example.org', '10.0.0.7'],
      });
      const cert = certOf(other.edgeT8.cert);
      expect(cert.subjectAltName).to.include('DNS:scef.example.org');
      expect(cert.subjectAltName).to.include('IP Address:10.0.0.7');
      expect(cert.subjectAltName).to.include('IP Address:127.0.0.1');
      expect(cert.keyUsage).to.deep.equal([SERVER_AUTH]);
      expect(cert.verify(certOf(other.t8Ca.cert).publicKey)).to.equal(true);
    });
  });

  describe('mesh certificates', () => {
    it('a service certificate carries its SPIFFE ID and verifies against the mesh CA only', () => {
      const meshCa = certOf(layout.meshCa.cert);
      const asCa = certOf(layout.asCa.cert);
      const t8Ca = certOf(layout.t8Ca.cert);
      for (const name of MESH_SERVICES) {
        const cert = certOf(layout.services[name].cert);
        expect(spiffeIdsOfPeer({ subjectaltname: cert.subjectAltName! })).to.deep.equal([`spiffe://${TD}/svc/${name}`]);
        expect(cert.subjectAltName).to.include('DNS:localhost').and.include(`DNS:${name}`).and.include('IP Address:127.0.0.1');
        expect(cert.verify(meshCa.publicKey), name).to.equal(true);
        expect(cert.checkIssued(meshCa)).to.equal(true);
        expect(cert.verify(asCa.publicKey), name).to.equal(false);
        expect(cert.verify(t8Ca.publicKey), name).to.equal(false);
        expect(cert.ca).to.equal(false);
        expect(cert.keyUsage).to.have.members([SERVER_AUTH, CLIENT_AUTH]);
        expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
        expect(cert.checkPrivateKey(createPrivateKey(readPem(layout.services[name].key)))).to.equal(true);
      }
    });

    it('the CAs are distinct self-signed CA certificates', () => {
      const cas = [layout.meshCa, layout.asCa, layout.t8Ca].map(p => certOf(p.cert));
      for (const ca of cas) {
        expect(ca.ca).to.equal(true);
        expect(ca.verify(ca.publicKey)).to.equal(true);
      }
      expect(new Set(cas.map(c => c.fingerprint256)).size).to.equal(3);
    });

    it('the operator certificate is a mesh client identity', () => {
      const material = readMeshTlsMaterial(layout, 'admin');
      const cert = new X509Certificate(material.certPem);
      expect(peerSpiffeId({ subjectaltname: cert.subjectAltName! })).to.equal(`spiffe://${TD}/operator/admin`);
      expect(cert.keyUsage).to.deep.equal([CLIENT_AUTH]);
      expect(cert.verify(new X509Certificate(material.caPem).publicKey)).to.equal(true);
    });
  });

  describe('AS client certificates', () => {
    it('verify against the AS CA only, carry only clientAuth and the as/ SPIFFE ID', async () => {
      const as = await issueAsClientCertificate(stateDir, TD, 'acme-as');
      const cert = new X509Certificate(as.certPem);
      expect(cert.verify(certOf(layout.asCa.cert).publicKey)).to.equal(true);
      expect(cert.verify(certOf(layout.meshCa.cert).publicKey)).to.equal(false);
      expect(cert.verify(certOf(layout.t8Ca.cert).publicKey)).to.equal(false);
      expect(cert.keyUsage).to.deep.equal([CLIENT_AUTH]);
      expect(cert.subject).to.equal('CN=acme-as');
      expect(cert.ca).to.equal(false);
      expect(spiffeIdsOfPeer({ subjectaltname: cert.subjectAltName! })).to.deep.equal([`spiffe://${TD}/as/acme-as`]);
      expect(as.thumbprint).to.equal(createHash('sha256').update(cert.raw).digest('base64url'));
      expect(cert.serialNumber).to.match(/^[4-7][0-9A-F]{31}$/);
    });

    it('refuse a malformed scsAsId, another trust domain and a missing PKI', async () => {
      const attempts: [string, string, string, typeof Error][] = [
        [stateDir, TD, 'bad/id', TypeError],
        [stateDir, 'other.test', 'acme', Error],
        [join(tmp, 'nowhere'), TD, 'acme', Error],
      ];
      for (const [dir, td, id, type] of attempts) {
        let err: unknown;
        try {
          await issueAsClientCertificate(dir, td, id);
        } catch (e: unknown) {
          err = e;
        }
        expect(err, `${dir} ${td} ${id}`).to.be.instanceOf(type);
      }
    });
  });

  describe('test certificates for negative cases', () => {
    it('issueCertificate can produce a CA certificate', async () => {
      const ca = await issueCertificate(pairOf(layout.asCa), {
        subject: 'CN=sub-ca',
        isCa: true,
        extendedKeyUsages: ['clientAuth'],
        uriSans: [spiffeId(TD, 'as', 'ca-as')],
      });
      const cert = new X509Certificate(ca.certPem);
      expect(cert.ca).to.equal(true);
      expect(cert.verify(certOf(layout.asCa.cert).publicKey)).to.equal(true);
    });

    it('issueCertificate can produce an expired certificate', async () => {
      const notAfter = new Date(Date.now() - 24 * 3600 * 1000);
      const expired = await issueAsClientCertificate(stateDir, TD, 'expired-as', { notAfter });
      const cert = new X509Certificate(expired.certPem);
      expect(new Date(cert.validTo).getTime()).to.be.below(Date.now());
      expect(new Date(cert.validFrom).getTime()).to.be.below(new Date(cert.validTo).getTime());
    });

    it('issueCertificate refuses a non-CA issuer and a bad validity window', async () => {
      let err: unknown;
      try {
        await issueCertificate(pairOf(layout.services.edge), { subject: 'CN=x' });
      } catch (e: unknown) {
        err = e;
      }
      expect(err).to.be.instanceOf(TypeError);
      err = undefined;
      try {
        await issueCertificate(pairOf(layout.asCa), { subject: 'CN=x', notBefore: new Date(), notAfter: new Date(Date.now() - 1000) });
      } catch (e: unknown) {
        err = e;
      }
      expect(err).to.be.instanceOf(TypeError);
    });
  });

  describe('T8 TLS handshake', () => {
    it('accepts an AS client certificate and exposes its SPIFFE ID to the server', async () => {
      const as = await issueAsClientCertificate(stateDir, TD, 'tls-as');
      const result = await t8Handshake(layout, as);
      expect(result.serverError, String(result.serverError)).to.equal(undefined);
      expect(result.ok).to.equal(true);
      expect(result.peerIds).to.deep.equal([`spiffe://${TD}/as/tls-as`]);
    });

    it('rejects a client presenting a mesh service certificate', async () => {
      const result = await t8Handshake(layout, pairOf(layout.services.edge));
      expect(result.ok).to.equal(false);
      expect(result.serverError).to.be.instanceOf(Error);
      const why = await t8Handshake(layout, pairOf(layout.services.edge), { diagnose: true });
      expect(why.authorizationError).to.equal('UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    });

    it('rejects an expired AS client certificate', async () => {
      const expired = await issueAsClientCertificate(stateDir, TD, 'old-as', { notAfter: new Date(Date.now() - 60_000) });
      const result = await t8Handshake(layout, expired);
      expect(result.ok).to.equal(false);
      expect(result.serverError).to.be.instanceOf(Error);
      expect((await t8Handshake(layout, expired, { diagnose: true })).authorizationError).to.equal('CERT_HAS_EXPIRED');
    });

    it('rejects an AS client certificate revoked by a CRL from the AS CA', async () => {
      const revoked = await issueAsClientCertificate(stateDir, TD, 'revoked-as');
      const good = await issueAsClientCertificate(stateDir, TD, 'good-as');
      const crl = await issueCrl(pairOf(layout.asCa), [{ serialNumber: new X509Certificate(revoked.certPem).serialNumber }]);
      expect((await t8Handshake(layout, revoked, { crl })).ok).to.equal(false);
      expect((await t8Handshake(layout, revoked, { crl, diagnose: true })).authorizationError).to.equal('CERT_REVOKED');
      expect((await t8Handshake(layout, good, { crl })).ok).to.equal(true);
    });

    it('the client refuses the T8 server certificate unless it trusts the T8 CA', async () => {
      const as = await issueAsClientCertificate(stateDir, TD, 'picky-as');
      const result = await t8Handshake(layout, as, { clientCa: readPem(layout.meshCa.cert) });
      expect(result.ok).to.equal(false);
      expect(result.clientError).to.be.instanceOf(Error);
    });
  });
});
