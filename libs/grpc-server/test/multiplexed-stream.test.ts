import { expect } from 'chai';
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import type { ClientDuplexStream, StatusObject } from '@grpc/grpc-js';
import { meshChannelCredentials } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import { ReplayGuardServiceClient, ReplayGuardServiceService, Verdict } from '@aese/protos/replay-guard/v1';
import type { CheckAndRecordStreamAnswer, CheckAndRecordStreamCall, CheckAndRecordStreamRequest, CheckAndRecordStreamResponse } from '@aese/protos/replay-guard/v1';
import type { MeshServiceName } from '@aese/runtime';
import { createMeshServer, mount } from '../src/index.ts';
import { createTestPki, startTestServer } from './stream-fixture.ts';
import type { TestPki } from './stream-fixture.ts';

type Answer = CheckAndRecordStreamAnswer;

/** A raw bidi stream to the test server, answers collected by id, and the ids of each answer message. */
function openStream(pki: TestPki, port: number, as: MeshServiceName) {
  const client = new ReplayGuardServiceClient(`localhost:${port}`, meshChannelCredentials({ tls: pki.tls(as), serverId: pki.id('replay-guard') }));
  const stream: ClientDuplexStream<CheckAndRecordStreamRequest, CheckAndRecordStreamResponse> = client.checkAndRecordStream(new Metadata());
  const answers = new Map<number, Answer>();
  const order: number[] = [];
  const messages: number[][] = [];
  const waiters: (() => void)[] = [];
  stream.on('data', (m: CheckAndRecordStreamResponse) => {
    messages.push(m.answers.map(a => a.id));
    for (const a of m.answers) {
      answers.set(a.id, a);
      order.push(a.id);
    }
    for (const w of waiters.splice(0)) w();
  });
  const status = new Promise<StatusObject>(resolve => stream.on('status', resolve));
  stream.on('error', () => undefined);
  return {
    answers,
    order,
    messages,
    status,
    send: (id: number, scsAsId: string, timeoutMs = 0, created = 2) => stream.write({ calls: [{ id, request: { scsAsId, nonce: 'n', created }, timeoutMs, traceparent: '' }] }),
    sendRaw: (...calls: CheckAndRecordStreamCall[]) => stream.write({ calls }),
    end: () => stream.end(),
    async answer(id: number, timeoutMs = 5_000): Promise<Answer> {
      const until = Date.now() + timeoutMs;
      while (!answers.has(id)) {
        if (Date.now() > until) throw new Error(`no answer for ${id}`);
        await new Promise<void>(r => {
          waiters.push(r);
          setTimeout(r, 20);
        });
      }
      return answers.get(id)!;
    },
    close: () => {
      stream.cancel();
      client.close();
    },
  };
}

describe('grpc-server multiplexed streams', function () {
  this.timeout(20_000);
  let pki: TestPki;
  before(async () => {
    pki = await createTestPki();
  });
  after(() => pki.remove());

  it('runs each call through the unary handler and answers by id, out of order when the handlers finish so', async () => {
    const { server, port, log } = await startTestServer(pki);
    const s = openStream(pki, port, 'edge');
    try {
      s.send(1, 'slow:150', 0, 2);
      s.send(2, 'ok', 0, 3);
      s.send(3, 'ok', 0, 4);
      const [a1, a2, a3] = await Promise.all([s.answer(1), s.answer(2), s.answer(3)]);
      expect(a1).to.deep.include({ errorCode: '', response: { verdict: Verdict.VERDICT_ACCEPTED } });
      expect(a2).to.deep.include({ errorCode: '', response: { verdict: Verdict.VERDICT_REPLAYED } });
      expect(a3).to.deep.include({ errorCode: '', response: { verdict: Verdict.VERDICT_ACCEPTED } });
      expect(s.order.indexOf(1), 'the slow call does not hold the others back').to.be.greaterThan(s.order.indexOf(3));
      expect(log.calls.map(c => c.caller)).to.deep.equal([pki.id('edge'), pki.id('edge'), pki.id('edge')]);
      expect(log.channels.size, 'one stream').to.equal(1);
    } finally {
      s.close();
      await server.shutdown();
    }
  });

  it('runs every call of a batch and sends the answers ready in one turn together, a slow one later on its own', async () => {
    const { server, port, log } = await startTestServer(pki);
    const s = openStream(pki, port, 'edge');
    try {
      const call = (id: number, scsAsId: string, created: number): CheckAndRecordStreamCall => ({ id, request: { scsAsId, nonce: 'n', created }, timeoutMs: 0, traceparent: '' });
      s.sendRaw(call(1, 'ok', 2), call(2, 'ok', 3), call(3, 'slow:100', 2), call(4, 'not-found', 2), call(5, 'ok', 4));
      const answers = await Promise.all([1, 2, 3, 4, 5].map(id => s.answer(id)));
      expect(answers.map(a => a.errorCode || a.response?.verdict)).to.deep.equal([
        Verdict.VERDICT_ACCEPTED,
        Verdict.VERDICT_REPLAYED,
        Verdict.VERDICT_ACCEPTED,
        'NOT_FOUND',
        Verdict.VERDICT_ACCEPTED,
      ]);
      expect(log.calls.length, 'one handler run per call').to.equal(5);
      expect(s.messages, 'four answers in the first message, the slow one alone after').to.deep.equal([[1, 2, 4, 5], [3]]);
    } finally {
      s.close();
      await server.shutdown();
    }
  });

  it('refuses every call of a caller that is not allowed and never runs the handler; the allowed caller is served beside it', async () => {
    const { server, port, log, logs } = await startTestServer(pki);
    const bad = openStream(pki, port, 'authentication');
    const good = openStream(pki, port, 'edge');
    try {
      bad.send(1, 'ok');
      bad.send(2, 'ok');
      good.send(1, 'ok');
      const refused = await Promise.all([bad.answer(1), bad.answer(2)]);
      for (const a of refused) {
        expect(a.errorCode).to.equal('CALLER_NOT_ALLOWED');
        expect(a.response).to.equal(undefined);
      }
      expect((await good.answer(1)).response).to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      expect(
        log.calls.map(c => c.caller),
        'the handler ran for the edge only',
      ).to.deep.equal([pki.id('edge')]);
      expect(logs.filter(l => l.includes('caller not allowed')).length, 'logged once per stream').to.equal(1);
    } finally {
      bad.close();
      good.close();
      await server.shutdown();
    }
  });

  it("pushes a message of the service's own to the method's open streams whose caller is allowed, to no other", async () => {
    const { server, port } = await startTestServer(pki);
    const bad = openStream(pki, port, 'authentication');
    const good = openStream(pki, port, 'edge');
    try {
      // Both streams are open on the server once each has been answered.
      bad.send(1, 'ok');
      good.send(1, 'ok');
      await Promise.all([bad.answer(1), good.answer(1)]);
      expect(server.push('checkAndRecordStream', { answers: [] }), 'sent to the allowed caller only').to.equal(1);
      expect(server.push('checkAndRecord', { answers: [] }), 'a unary method has no streams').to.equal(0);
      good.send(2, 'ok');
      await good.answer(2);
      expect(good.messages, 'the pushed message between the two answers').to.deep.equal([[1], [], [2]]);
      bad.send(2, 'ok');
      await bad.answer(2);
      expect(bad.messages, 'nothing but its refusals').to.deep.equal([[1], [2]]);
    } finally {
      bad.close();
      good.close();
      await server.shutdown();
    }
  });

  it('answers a failing call with its stable code (a bug as INTERNAL, its detail never sent) and keeps the stream', async () => {
    const { server, port, log, logs } = await startTestServer(pki);
    const s = openStream(pki, port, 'edge');
    try {
      s.send(1, 'not-found');
      s.send(2, 'boom');
      const a1 = await s.answer(1);
      const a2 = await s.answer(2);
      expect(a1).to.deep.include({ errorCode: 'NOT_FOUND', errorMessage: 'no such thing', response: undefined });
      expect(a2).to.deep.include({ errorCode: 'INTERNAL', errorMessage: 'internal error', response: undefined });
      expect(
        logs.some(l => l.includes('secret internal detail')),
        'the bug is in the server log',
      ).to.equal(true);
      s.send(3, 'ok');
      expect((await s.answer(3)).response, 'the stream survived').to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      expect(log.calls.length).to.equal(3);
      expect(log.channels.size).to.equal(1);
    } finally {
      s.close();
      await server.shutdown();
    }
  });

  it('gives each call its own deadline: DEADLINE_EXCEEDED and an aborted handler signal, the stream goes on', async () => {
    const { server, port, log } = await startTestServer(pki);
    const s = openStream(pki, port, 'edge');
    try {
      const started = Date.now();
      s.send(1, 'hang', 100);
      s.send(2, 'slow:50', 2_000);
      expect(await s.answer(1)).to.deep.include({ errorCode: 'DEADLINE_EXCEEDED', response: undefined });
      expect(Date.now() - started).to.be.within(90, 2_000);
      expect((await s.answer(2)).response, 'the call with time left is answered').to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      expect(log.aborted).to.deep.equal(['hang']);
    } finally {
      s.close();
      await server.shutdown();
    }
  });

  it('bounds the calls in flight on one stream: beyond the bound RESOURCE_EXHAUSTED at once, the handler not run', async () => {
    const { server, port, log } = await startTestServer(pki, { maxInFlightPerStream: 4 });
    const s = openStream(pki, port, 'edge');
    try {
      for (let id = 1; id <= 6; id++) s.send(id, 'hang', 400);
      const over = await Promise.all([s.answer(5, 300), s.answer(6, 300)]);
      for (const a of over) expect(a.errorCode).to.equal('RESOURCE_EXHAUSTED');
      expect(s.answers.has(1), 'the calls within the bound are still running').to.equal(false);
      expect(log.calls.length).to.equal(4);
      for (let id = 1; id <= 4; id++) expect((await s.answer(id)).errorCode).to.equal('DEADLINE_EXCEEDED');
      s.send(7, 'ok');
      expect((await s.answer(7)).response, 'room again once they finished').to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
    } finally {
      s.close();
      await server.shutdown();
    }
  });

  it('counts a call past its deadline against the bound until its handler has really ended', async () => {
    const { server, port, log } = await startTestServer(pki, { maxInFlightPerStream: 2 });
    const s = openStream(pki, port, 'edge');
    try {
      // Handlers that ignore their signal: answered DEADLINE_EXCEEDED at 50 ms, still running until 600 ms.
      s.send(1, 'slow:600', 50);
      s.send(2, 'slow:600', 50);
      for (const id of [1, 2]) expect((await s.answer(id)).errorCode).to.equal('DEADLINE_EXCEEDED');
      s.send(3, 'ok');
      expect((await s.answer(3)).errorCode, 'both slots still taken by running handlers').to.equal('RESOURCE_EXHAUSTED');
      expect(log.calls.map(c => c.scsAsId)).to.deep.equal(['slow:600', 'slow:600']);
      await new Promise(r => setTimeout(r, 700));
      s.send(4, 'ok');
      expect((await s.answer(4)).response, 'room once they ended').to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
    } finally {
      s.close();
      await server.shutdown();
    }
  });

  it('refuses a call without a request as INVALID_INPUT', async () => {
    const { server, port, log } = await startTestServer(pki);
    const s = openStream(pki, port, 'edge');
    try {
      s.sendRaw({ id: 9, request: undefined, timeoutMs: 0, traceparent: '' });
      expect((await s.answer(9)).errorCode).to.equal('INVALID_INPUT');
      expect(log.calls.length).to.equal(0);
      s.send(10, 'ok');
      expect((await s.answer(10)).errorCode).to.equal('');
    } finally {
      s.close();
      await server.shutdown();
    }
  });

  it('on shutdown answers the calls in flight, refuses new ones and ends the stream cleanly, well inside the grace period', async () => {
    const { server, port } = await startTestServer(pki, { shutdownGraceMs: 5_000 });
    const s = openStream(pki, port, 'edge');
    try {
      s.send(1, 'ok');
      await s.answer(1);
      s.send(2, 'slow:200');
      await new Promise(r => setTimeout(r, 50));
      const started = Date.now();
      await server.shutdown();
      expect(Date.now() - started).to.be.below(2_000);
      expect((await s.answer(2)).response, 'the call in flight was answered').to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      expect((await s.status).code).to.equal(GrpcStatus.OK);
    } finally {
      s.close();
    }
  });

  it('serves the unary method as before beside its stream', async () => {
    const { server, port, log } = await startTestServer(pki);
    const client = new ReplayGuardServiceClient(`localhost:${port}`, meshChannelCredentials({ tls: pki.tls('edge'), serverId: pki.id('replay-guard') }));
    try {
      const res = await new Promise((resolve, reject) => client.checkAndRecord({ scsAsId: 'ok', nonce: 'n', created: 2 }, (err, r) => (err ? reject(err) : resolve(r))));
      expect(res).to.deep.equal({ verdict: Verdict.VERDICT_ACCEPTED });
      expect(log.calls.length).to.equal(1);
    } finally {
      client.close();
      await server.shutdown();
    }
  });

  it('refuses to build a server whose stream method names no unary method to multiplex', () => {
    const logger = createLogger({ service: 'stream-test', level: 'silent' });
    const build = (streams: Record<string, string> | undefined) =>
      createMeshServer({
        name: 'x',
        tls: pki.tls('replay-guard'),
        logger,
        protoFiles: ['aese/replay_guard/v1/replay_guard.proto'],
        serviceNames: [],
        services: [
          mount({
            definition: ReplayGuardServiceService,
            handlers: { checkAndRecord: async () => ({ verdict: Verdict.VERDICT_ACCEPTED }) },
            allowedCallers: { checkAndRecord: [] },
            ...(streams ? { streams: streams as { checkAndRecordStream: 'checkAndRecord' } } : {}),
          }),
        ],
      });
    expect(() => build(undefined)).to.throw(TypeError, /CheckAndRecordStream must name the unary method/);
    expect(() => build({ checkAndRecordStream: 'checkAndRecordStream' })).to.throw(TypeError);
    expect(() => build({ checkAndRecordStream: 'checkAndRecord' })).not.to.throw();
  });
});
