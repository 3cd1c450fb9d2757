import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import { ReplayGuardServiceClient, Verdict } from '@aese/protos/replay-guard/v1';
import type { CheckAndRecordRequest } from '@aese/protos/replay-guard/v1';
import type { MeshServiceName } from '@aese/runtime';
import { freePort } from '@aese/testing';
import { createMeshClient, createStreamingCaller } from '../src/index.ts';
import { createTestPki, startTestServer } from '../../grpc-server/test/stream-fixture.ts';
import type { TestPki } from '../../grpc-server/test/stream-fixture.ts';

const req = (scsAsId: string, created = 2): CheckAndRecordRequest => ({ scsAsId, nonce: 'n', created });

async function failure(p: Promise<unknown>): Promise<AeseError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the call was expected to fail').to.be.instanceOf(AeseError);
  return err as AeseError;
}

describe('grpc-client streaming caller', function () {
  this.timeout(20_000);
  let pki: TestPki;
  before(async () => {
    pki = await createTestPki();
  });
  after(() => pki.remove());

  const caller = (port: number, as: MeshServiceName = 'edge', extra: { deadlineMs?: number; serverId?: string } = {}) =>
    createStreamingCaller(ReplayGuardServiceClient, 'checkAndRecordStream', {
      address: `localhost:${port}`,
      tls: pki.tls(as),
      serverId: extra.serverId ?? pki.id('replay-guard'),
      minBackoffMs: 50,
      maxBackoffMs: 200,
      ...(extra.deadlineMs !== undefined ? { deadlineMs: extra.deadlineMs } : {}),
    });

  it('answers like the unary client, many calls multiplexed on one stream', async () => {
    const { server, port, log } = await startTestServer(pki);
    const stream = caller(port);
    const unary = createMeshClient(ReplayGuardServiceClient, { address: `localhost:${port}`, tls: pki.tls('edge'), serverId: pki.id('replay-guard') });
    try {
      const viaUnary = await unary.checkAndRecord(req('ok', 3));
      const viaStream = await stream.call(req('ok', 3));
      expect(viaStream).to.deep.equal(viaUnary);
      expect(viaStream).to.deep.equal({ verdict: Verdict.VERDICT_REPLAYED });
      const many = await Promise.all(Array.from({ length: 200 }, (_, i) => stream.call(req('ok', i))));
      many.forEach((r, i) => expect(r.verdict, `call ${i}`).to.equal(i % 2 === 0 ? Verdict.VERDICT_ACCEPTED : Verdict.VERDICT_REPLAYED));
      // One channel for the unary call, one for all 201 stream calls.
      expect(log.channels.size).to.equal(2);
    } finally {
      stream.close();
      unary.close();
      await server.shutdown();
    }
  });

  it("fails one call with the handler's stable code and keeps the stream for the next", async () => {
    const { server, port, log } = await startTestServer(pki);
    const stream = caller(port);
    try {
      const notFound = await failure(stream.call(req('not-found')));
      expect(notFound.code).to.equal('NOT_FOUND');
      expect(notFound.message).to.equal('no such thing');
      const bug = await failure(stream.call(req('boom')));
      expect(bug.code).to.equal('INTERNAL');
      expect(bug.message).not.to.include('secret');
      expect(await stream.call(req('ok'))).to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      expect(log.channels.size, 'the same stream throughout').to.equal(1);
    } finally {
      stream.close();
      await server.shutdown();
    }
  });

  it('gets CALLER_NOT_ALLOWED for every call of a caller not on the allow-list; the handler never runs for it', async () => {
    const { server, port, log } = await startTestServer(pki);
    const bad = caller(port, 'authentication');
    const good = caller(port, 'edge');
    try {
      for (const r of await Promise.allSettled([bad.call(req('ok')), bad.call(req('ok')), bad.call(req('ok'))])) {
        expect(r.status).to.equal('rejected');
        expect((r as PromiseRejectedResult).reason)
          .to.be.instanceOf(AeseError)
          .with.property('code', 'CALLER_NOT_ALLOWED');
      }
      expect(await good.call(req('ok'))).to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      expect(log.calls.map(c => c.caller)).to.deep.equal([pki.id('edge')]);
    } finally {
      bad.close();
      good.close();
      await server.shutdown();
    }
  });

  it('enforces the per-call deadline with DEADLINE_EXCEEDED, and the server stops the handler too', async () => {
    const { server, port, log } = await startTestServer(pki);
    const stream = caller(port, 'edge', { deadlineMs: 150 });
    try {
      await stream.call(req('ok'));
      const started = Date.now();
      const err = await failure(stream.call(req('hang')));
      expect(err.code).to.equal('DEADLINE_EXCEEDED');
      expect(Date.now() - started).to.be.within(140, 1_500);
      const longer = await failure(stream.call(req('hang'), { deadlineMs: 300 }));
      expect(longer.code).to.equal('DEADLINE_EXCEEDED');
      expect(await stream.call(req('ok')), 'the stream is still good').to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      await new Promise(r => setTimeout(r, 50));
      expect(log.aborted).to.deep.equal(['hang', 'hang']);
    } finally {
      stream.close();
      await server.shutdown();
    }
  });

  it('fails the calls in flight with UNAVAILABLE when the stream breaks, long before their deadline', async () => {
    const { server, port } = await startTestServer(pki, { shutdownGraceMs: 100 });
    const stream = caller(port, 'edge', { deadlineMs: 10_000 });
    try {
      await stream.call(req('ok'));
      const inFlight = [stream.call(req('hang')), stream.call(req('hang'))];
      await new Promise(r => setTimeout(r, 50));
      const started = Date.now();
      void server.shutdown(); // the hung calls outlive the grace period: the server is forced down
      for (const p of inFlight) expect((await failure(p)).code).to.equal('UNAVAILABLE');
      expect(Date.now() - started).to.be.below(3_000);
    } finally {
      stream.close();
    }
  });

  it("hands the service's own messages to onMessage after the answers they came with, and tells onStreamEnd when the stream ends", async () => {
    const { server, port } = await startTestServer(pki, { shutdownGraceMs: 100 });
    const seen: string[] = [];
    const stream = createStreamingCaller(ReplayGuardServiceClient, 'checkAndRecordStream', {
      address: `localhost:${port}`,
      tls: pki.tls('edge'),
      serverId: pki.id('replay-guard'),
      onMessage: m => seen.push(`message:${(m as { answers: unknown[] }).answers.length}`),
      onStreamEnd: () => seen.push('end'),
    });
    try {
      // The answer's continuation runs after the message was handed over.
      await stream.call(req('ok')).then(() => seen.push('answered'));
      expect(server.push('checkAndRecordStream', { answers: [] })).to.equal(1);
      await stream.call(req('ok'));
      expect(seen.slice(0, 3)).to.deep.equal(['message:1', 'answered', 'message:0']);
      await server.shutdown();
      const until = Date.now() + 3_000;
      while (!seen.includes('end') && Date.now() < until) await new Promise(r => setTimeout(r, 20));
      expect(
        seen.filter(s => s === 'end'),
        'told once',
      ).to.have.length(1);
    } finally {
      stream.close();
    }
  });

  it('fails closed and fast while the service is down, and reconnects once it is back on its port', async () => {
    const first = await startTestServer(pki);
    const stream = caller(first.port);
    try {
      expect(await stream.call(req('ok'))).to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      await first.server.shutdown();
      const started = Date.now();
      for (let i = 0; i < 3; i++) {
        expect((await failure(stream.call(req('ok')))).code).to.equal('UNAVAILABLE');
        await new Promise(r => setTimeout(r, 60));
      }
      expect(Date.now() - started, 'no call waited for its deadline').to.be.below(3_000);
      const second = await startTestServer(pki, { port: first.port });
      try {
        const until = Date.now() + 5_000;
        let answer;
        while (!answer) {
          answer = await stream.call(req('ok')).catch((err: AeseError) => {
            expect(err.code).to.equal('UNAVAILABLE');
            return undefined;
          });
          if (!answer && Date.now() > until) throw new Error('the caller did not reconnect');
          if (!answer) await new Promise(r => setTimeout(r, 50));
        }
        expect(answer).to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
        expect(second.log.calls.length).to.equal(1);
        expect(first.log.calls.length, 'nothing reached the stopped server').to.equal(1);
      } finally {
        await second.server.shutdown();
      }
    } finally {
      stream.close();
    }
  });

  it('after a graceful restart of a stream that worked, the very first call opens a new stream and succeeds (no back-off)', async () => {
    const first = await startTestServer(pki);
    const stream = caller(first.port);
    try {
      expect(await stream.call(req('ok'))).to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      await first.server.shutdown();
      const second = await startTestServer(pki, { port: first.port });
      try {
        expect(await stream.call(req('ok'))).to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
        expect(second.log.calls.length).to.equal(1);
      } finally {
        await second.server.shutdown();
      }
    } finally {
      stream.close();
    }
  });

  it('fails closed when nothing listens, and when the server is not the expected identity', async () => {
    const nobody = caller(await freePort());
    const { server, port, log } = await startTestServer(pki);
    const impostor = caller(port, 'edge', { serverId: pki.id('crypto') });
    const genuine = caller(port);
    try {
      expect((await failure(nobody.call(req('ok')))).code).to.equal('UNAVAILABLE');
      expect((await failure(impostor.call(req('ok')))).code).to.equal('UNAVAILABLE');
      expect(log.calls.length, 'the impostor check happens before any call').to.equal(0);
      expect(await genuine.call(req('ok'))).to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
    } finally {
      nobody.close();
      impostor.close();
      genuine.close();
      await server.shutdown();
    }
  });

  it('rejects a call whose signal aborts, and every call after close', async () => {
    const { server, port } = await startTestServer(pki);
    const stream = caller(port);
    try {
      const ac = new AbortController();
      const p = stream.call(req('hang'), { signal: ac.signal });
      setTimeout(() => ac.abort(), 50);
      expect((await failure(p)).code).to.equal('UNAVAILABLE');
      stream.close();
      expect((await failure(stream.call(req('ok')))).code).to.equal('UNAVAILABLE');
    } finally {
      stream.close();
      await server.shutdown();
    }
  });
});
