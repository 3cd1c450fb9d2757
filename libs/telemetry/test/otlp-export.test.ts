import { writeFileSync } from 'node:fs';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { expect } from 'chai';
import { createSelfSignedCa, issueCertificate } from '@aese/pki';
import { eventually, tempDir } from '@aese/testing';
import { inSpan, inSpanSoon, inSpanSync } from '../src/index.ts';
import { startTracing } from '../src/sdk.ts';

/** Spans leave over OTLP/HTTP to a collector over TLS, verified against the configured CA. */
describe('telemetry: OTLP export', () => {
  const dir = tempDir('aese-otlp');
  let server: Server;
  let port: number;
  const received: { path: string; contentType: string; body: Buffer }[] = [];

  before(async () => {
    const ca = await createSelfSignedCa('collector CA');
    const cert = await issueCertificate(ca, { subject: 'CN=localhost', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], extendedKeyUsages: ['serverAuth'] });
    writeFileSync(join(dir.path, 'collector-ca.pem'), ca.certPem);
    server = createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({ path: req.url ?? '', contentType: String(req.headers['content-type']), body: Buffer.concat(chunks) });
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      });
    });
    await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(async () => {
    await new Promise(resolve => server.close(resolve));
    dir.remove();
  });

  it('sends the spans of a service to <endpoint>/v1/traces, over TLS verified against the configured CA', async () => {
    const tracing = startTracing({
      service: 'otlp-probe',
      config: { otlpEndpoint: `https://localhost:${port}`, otlpTracesEndpoint: undefined, otlpCertificate: join(dir.path, 'collector-ca.pem'), traceSampleRatio: 1 },
    });
    try {
      expect(tracing.enabled).to.equal(true);
      await inSpan('exported-span', async () => undefined);
      await tracing.flush();
      await eventually(() => received.length > 0, 5_000, 'an OTLP request at the collector');
    } finally {
      await tracing.shutdown();
    }
    expect(received[0].path).to.equal('/v1/traces');
    expect(received[0].body.includes(Buffer.from('exported-span')), 'the span name in the export').to.equal(true);
    expect(received[0].body.includes(Buffer.from('otlp-probe')), 'the service name in the export').to.equal(true);
  });

  it('exports nothing when no endpoint is set (positive control of the collector above)', async () => {
    const before = received.length;
    const tracing = startTracing({ service: 'otlp-off', config: { otlpEndpoint: undefined, otlpTracesEndpoint: undefined, traceSampleRatio: 1 } });
    try {
      expect(tracing.enabled).to.equal(false);
      await inSpan('not-exported', async () => undefined);
    } finally {
      await tracing.shutdown();
    }
    expect(received.length).to.equal(before);
  });
  it('spans of synchronous work (inSpanSync, inSpanSoon) are exported too; with tracing off they are plain calls', async () => {
    const off = startTracing({ service: 'sync-off', config: { otlpEndpoint: undefined, otlpTracesEndpoint: undefined, traceSampleRatio: 1 } });
    try {
      expect(inSpanSync('off-sync', () => 1)).to.equal(1);
      expect(
        inSpanSoon('off-soon', () => 2),
        'a value, not a promise',
      ).to.equal(2);
    } finally {
      await off.shutdown();
    }
    const before = received.length;
    const tracing = startTracing({
      service: 'sync-probe',
      config: { otlpEndpoint: `https://localhost:${port}`, otlpTracesEndpoint: undefined, otlpCertificate: join(dir.path, 'collector-ca.pem'), traceSampleRatio: 1 },
    });
    try {
      expect(inSpanSync('sync-span', () => 1)).to.equal(1);
      expect(() =>
        inSpanSync('sync-failed-span', () => {
          throw new Error('refused');
        }),
      ).to.throw('refused');
      const soon = inSpanSoon('soon-span', () => 2);
      expect(soon).to.be.instanceOf(Promise);
      expect(await soon).to.equal(2);
      await tracing.flush();
      await eventually(() => received.length > before, 5_000, 'an OTLP request at the collector');
    } finally {
      await tracing.shutdown();
    }
    const exported = Buffer.concat(received.slice(before).map(r => r.body));
    for (const name of ['sync-span', 'sync-failed-span', 'soon-span']) expect(exported.includes(Buffer.from(name)), name).to.equal(true);
  });
});
