import { expect } from 'chai';
import { SpanKind } from '@opentelemetry/api';
import { InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { ReplayGuardServiceClient } from '@aese/protos/replay-guard/v1';
import { inSpan } from '@aese/telemetry';
import { startTracing } from '@aese/telemetry/sdk';
import type { Tracing } from '@aese/telemetry';
import { createStreamingCaller } from '../src/index.ts';
import { createTestPki, startTestServer } from '../../grpc-server/test/stream-fixture.ts';
import type { TestPki } from '../../grpc-server/test/stream-fixture.ts';

const SERVER_SPAN = 'aese.replay_guard.v1.ReplayGuardService/CheckAndRecord';

describe('grpc-client streaming caller: trace context per message', function () {
  this.timeout(20_000);
  const exporter = new InMemorySpanExporter();
  let tracing: Tracing;
  let pki: TestPki;
  before(async () => {
    tracing = startTracing({ service: 'stream-trace-test', config: { otlpEndpoint: undefined, otlpTracesEndpoint: undefined, traceSampleRatio: 1 }, exporter });
    pki = await createTestPki();
  });
  after(async () => {
    pki.remove();
    await tracing.shutdown();
  });

  it('runs each multiplexed call in a server span that is the child of its own caller span', async () => {
    const { server, port } = await startTestServer(pki);
    const stream = createStreamingCaller(ReplayGuardServiceClient, 'checkAndRecordStream', {
      address: `localhost:${port}`,
      tls: pki.tls('edge'),
      serverId: pki.id('replay-guard'),
    });
    try {
      exporter.reset();
      // Two callers in two traces share the one stream, concurrently.
      const callers = await Promise.all(
        ['a', 'b'].map(n =>
          inSpan(`caller-${n}`, async span => {
            await stream.call({ scsAsId: 'ok', nonce: n, created: 2 });
            return span.spanContext();
          }),
        ),
      );
      // A call made outside any span starts a trace of its own on the server.
      await stream.call({ scsAsId: 'ok', nonce: 'c', created: 2 });
      const servers = exporter.getFinishedSpans().filter(s => s.name === SERVER_SPAN);
      expect(servers).to.have.length(3);
      for (const c of callers) {
        const child = servers.filter((s: ReadableSpan) => s.spanContext().traceId === c.traceId);
        expect(child, `server span of ${c.traceId}`).to.have.length(1);
        expect(child[0].parentSpanContext?.spanId).to.equal(c.spanId);
        expect(child[0].kind).to.equal(SpanKind.SERVER);
        expect(child[0].attributes).to.include({ 'aese.service': 'stream-test', 'aese.caller': pki.id('edge') });
      }
      const orphan = servers.filter(s => !callers.some(c => c.traceId === s.spanContext().traceId));
      expect(orphan).to.have.length(1);
      expect(orphan[0].parentSpanContext).to.equal(undefined);
    } finally {
      stream.close();
      await server.shutdown();
    }
  });
});
