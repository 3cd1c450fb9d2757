import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import type { Server, Socket } from 'node:net';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { DiscardPolicy, StorageType } from 'nats';
import type { NatsConnection } from 'nats';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { createLogger } from '@aese/logger';
import { initPki, pkiLayout } from '@aese/pki';
import { ReplayGuardServiceClient, Verdict } from '@aese/protos/replay-guard/v1';
import { serviceId } from '@aese/runtime';
import type { MeshTls } from '@aese/runtime';
import { connectNatsAs, eventually, freePort, startNatsServer, tempDir } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';
import { nonceKey, nonceTtlMs, REPLAY_WINDOW_STREAM, REPLAY_WINDOW_SUBJECT_PREFIX, streamConfig } from '@aese/replay-window';
import { startReplayGuardService } from '../src/server.ts';
import { healthCheck, meshCredentials } from '../../../test/support/grpc-probes.ts';

const TD = 'scef.test';
const SERVICE_NAME = 'aese.replay_guard.v1.ReplayGuardService';
const STREAM = REPLAY_WINDOW_STREAM;

type Client = MeshClient<ReplayGuardServiceClient>;

interface Guard {
  readonly port: number;
  readonly address: string;
  readonly client: Client;
  readonly logs: string[];
  clientAs(identity: 'edge' | 'authentication'): Client;
  health(): Promise<string>;
  stop(): Promise<void>;
}

const nonce = (): string => randomBytes(16).toString('base64url');
const nowS = (): number => Math.floor(Date.now() / 1000);

async function failure(p: Promise<unknown>): Promise<AeseError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the call was expected to fail').to.be.instanceOf(AeseError);
  return err as AeseError;
}

function grpcCode(err: AeseError): number | undefined {
  return (err.cause as ServiceError | undefined)?.code;
}

/** Polls `probe` (a failing probe counts as "not yet") until it holds or `timeoutMs` passes. */
function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  return eventually(() => probe().catch(() => false), timeoutMs, what);
}

/** The state folder whose PKI the test NATS servers and the guards use. */
let stateDir = '';

/**
 * Every nonce the replay stream holds, as nonceKey()s (`<AS token>.<digest>`), read straight from
 * NATS: each message on `aese.replay.window.<AS token>` is a batch of 32-byte SHA-256 digests.
 */
async function storedKeys(natsUrl: string): Promise<string[]> {
  const nc = await connectNatsAs(natsUrl, stateDir, 'nats-admin');
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(STREAM).catch(() => undefined);
    if (!info || info.state.messages === 0) return [];
    const keys: string[] = [];
    const consumer = await nc.jetstream().consumers.get(STREAM);
    const messages = await consumer.fetch({ max_messages: info.state.messages, expires: 2_000 });
    for await (const m of messages) {
      const token = m.subject.slice(REPLAY_WINDOW_SUBJECT_PREFIX.length + 1);
      for (let i = 0; i + 32 <= m.data.length; i += 32) keys.push(`${token}.${Buffer.from(m.data.subarray(i, i + 32)).toString('base64url')}`);
      if (m.seq >= info.state.last_seq) break;
    }
    return keys;
  } finally {
    await nc.close();
  }
}

async function withNats<T>(natsUrl: string, fn: (nc: NatsConnection) => Promise<T>): Promise<T> {
  const nc = await connectNatsAs(natsUrl, stateDir, 'nats-admin');
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}

/** A TCP relay that can stop forwarding (both ways) while the connections stay open: a hung NATS. */
async function startPausableRelay(targetPort: number): Promise<{ url: string; pause(): void; resume(): void; close(): Promise<void> }> {
  const port = await freePort();
  let paused = false;
  const pairs: { a: Socket; b: Socket; held: [Socket, Buffer][] }[] = [];
  const server: Server = createServer(a => {
    const b = tcpConnect({ host: '127.0.0.1', port: targetPort });
    const pair = { a, b, held: [] as [Socket, Buffer][] };
    pairs.push(pair);
    const forward = (to: Socket) => (d: Buffer) => (paused ? pair.held.push([to, d]) : to.write(d));
    a.on('data', forward(b));
    b.on('data', forward(a));
    a.on('error', () => b.destroy());
    b.on('error', () => a.destroy());
    a.on('close', () => b.destroy());
    b.on('close', () => a.destroy());
  });
  await new Promise<void>(r => server.listen(port, '127.0.0.1', r));
  return {
    url: `nats://127.0.0.1:${port}`,
    pause: () => {
      paused = true;
    },
    resume: () => {
      paused = false;
      for (const p of pairs) for (const [to, d] of p.held.splice(0)) to.write(d);
    },
    close: async () => {
      for (const p of pairs) {
        p.a.destroy();
        p.b.destroy();
      }
      await new Promise<void>(r => server.close(() => r()));
    },
  };
}

describe('replay-guard service (mTLS gRPC, real NATS JetStream)', function () {
  this.timeout(30_000);
  let dir: { path: string; remove: () => void };
  const running: Guard[] = [];

  const tlsOf = (identity: 'edge' | 'authentication'): MeshTls => {
    const layout = pkiLayout(dir.path);
    return {
      caPem: readFileSync(layout.meshCa.cert, 'utf8'),
      certPem: readFileSync(layout.services[identity].cert, 'utf8'),
      keyPem: readFileSync(layout.services[identity].key, 'utf8'),
    };
  };

  async function startGuard(natsUrl: string, opts: { now?: () => number; env?: Record<string, string> } = {}): Promise<Guard> {
    const logs: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(
          ...chunk
            .toString('utf8')
            .split('\n')
            .filter(l => l.length > 0),
        );
        cb();
      },
    });
    const env = {
      AESE_STATE_DIR: dir.path,
      AESE_TRUST_DOMAIN: TD,
      NATS_URL: natsUrl,
      LISTEN_HOST: '127.0.0.1',
      PORT: '0',
      ...opts.env,
    };
    const svc = await startReplayGuardService(env, createLogger({ service: 'replay-guard', level: 'debug', destination: sink }), {
      ...(opts.now ? { now: opts.now } : {}),
    });
    const address = `localhost:${svc.port}`;
    const clients: Client[] = [];
    const clientAs = (identity: 'edge' | 'authentication'): Client => {
      const c = createMeshClient(ReplayGuardServiceClient, { address, tls: tlsOf(identity), serverId: serviceId(TD, 'replay-guard') });
      clients.push(c);
      return c;
    };
    const guard: Guard = {
      port: svc.port,
      address,
      client: clientAs('edge'),
      logs,
      clientAs,
      health: () => healthCheck(address, meshCredentials(tlsOf('edge')), SERVICE_NAME),
      stop: async () => {
        running.splice(running.indexOf(guard), 1);
        for (const c of clients) c.close();
        await svc.stop();
      },
    };
    running.push(guard);
    return guard;
  }

  before(async () => {
    dir = tempDir('aese-replay-guard');
    stateDir = dir.path;
    await initPki({ stateDir: dir.path, trustDomain: TD });
  });
  afterEach(async () => {
    for (const g of [...running].reverse()) await g.stop();
  });
  after(() => dir?.remove());

  describe('decisions', () => {
    let nats: NatsServerProcess;
    before(async () => {
      nats = await startNatsServer({ secured: { stateDir, trustDomain: TD } });
    });
    after(async () => {
      await nats?.dispose();
    });

    it('accepts a nonce once, replays it after, and namespaces nonces per AS (catalogue 47, 55)', async () => {
      const g = await startGuard(nats.url);
      expect(await g.health()).to.equal('SERVING');
      const n = nonce();
      const created = nowS();
      const first = await g.client.checkAndRecord({ scsAsId: 'as-1', nonce: n, created });
      expect(first.verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      expect((await g.client.checkAndRecord({ scsAsId: 'as-1', nonce: n, created })).verdict).to.equal(Verdict.VERDICT_REPLAYED);
      // Same nonce, another AS: accepted (positive control), then replayed for that AS too.
      expect((await g.client.checkAndRecord({ scsAsId: 'as-2', nonce: n, created })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      expect((await g.client.checkAndRecord({ scsAsId: 'as-2', nonce: n, created: created - 1 })).verdict).to.equal(Verdict.VERDICT_REPLAYED);
      const keys = await storedKeys(nats.url);
      expect(keys).to.include.members([nonceKey('as-1', n), nonceKey('as-2', n)]);
      expect(keys.join(' ')).not.to.include(n);
      // The stream is durable, keeps nonces exactly one TTL and evicts nothing earlier.
      const info = await withNats(nats.url, async nc => (await nc.jetstreamManager()).streams.info(STREAM));
      expect(info.config.storage).to.equal(StorageType.File);
      expect(info.config.max_age).to.equal(nonceTtlMs(60, 10) * 1_000_000);
      expect([info.config.max_msgs, info.config.max_bytes, info.config.max_msgs_per_subject]).to.deep.equal([-1, -1, -1]);
      expect(g.logs.join('\n')).not.to.include(n);
    });

    it('answers STALE and FUTURE just outside the window, ACCEPTED on its edges, and writes nothing for the refusals (catalogue 48)', async () => {
      const T = nowS();
      const g = await startGuard(nats.url, { now: () => T * 1000 + 500 });
      const [stale, future, oldEdge, newEdge] = [nonce(), nonce(), nonce(), nonce()];
      expect((await g.client.checkAndRecord({ scsAsId: 'as-w', nonce: stale, created: T - 61 })).verdict).to.equal(Verdict.VERDICT_STALE);
      expect((await g.client.checkAndRecord({ scsAsId: 'as-w', nonce: future, created: T + 11 })).verdict).to.equal(Verdict.VERDICT_FUTURE);
      expect((await g.client.checkAndRecord({ scsAsId: 'as-w', nonce: oldEdge, created: T - 60 })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      expect((await g.client.checkAndRecord({ scsAsId: 'as-w', nonce: newEdge, created: T + 10 })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      const keys = await storedKeys(nats.url);
      expect(keys).to.include.members([nonceKey('as-w', oldEdge), nonceKey('as-w', newEdge)]);
      expect(keys).not.to.include(nonceKey('as-w', stale));
      expect(keys).not.to.include(nonceKey('as-w', future));
      // A refused nonce was not burnt: once its created is inside the window it is accepted.
      expect((await g.client.checkAndRecord({ scsAsId: 'as-w', nonce: future, created: T })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
    });

    it('a nonce accepted by one replica is REPLAYED at another on the same NATS (catalogue 50)', async () => {
      const a = await startGuard(nats.url);
      const b = await startGuard(nats.url);
      const [n1, n2] = [nonce(), nonce()];
      const created = nowS();
      expect((await a.client.checkAndRecord({ scsAsId: 'as-r', nonce: n1, created })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      expect((await b.client.checkAndRecord({ scsAsId: 'as-r', nonce: n1, created })).verdict).to.equal(Verdict.VERDICT_REPLAYED);
      expect((await b.client.checkAndRecord({ scsAsId: 'as-r', nonce: n2, created })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      expect((await a.client.checkAndRecord({ scsAsId: 'as-r', nonce: n2, created })).verdict).to.equal(Verdict.VERDICT_REPLAYED);
      // Racing replicas: one request, many copies at once, exactly one ACCEPTED.
      const n3 = nonce();
      const verdicts = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).client.checkAndRecord({ scsAsId: 'as-r', nonce: n3, created })));
      expect(verdicts.filter(v => v.verdict === Verdict.VERDICT_ACCEPTED)).to.have.length(1);
      expect(verdicts.filter(v => v.verdict === Verdict.VERDICT_REPLAYED)).to.have.length(19);
    });

    it('a restarted replay-guard still REPLAYS what it accepted before (catalogue 51), and accepts fresh nonces at once', async () => {
      const first = await startGuard(nats.url);
      const n = nonce();
      const created = nowS();
      expect((await first.client.checkAndRecord({ scsAsId: 'as-s', nonce: n, created })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      await first.stop();
      const second = await startGuard(nats.url);
      expect(await second.health()).to.equal('SERVING');
      expect((await second.client.checkAndRecord({ scsAsId: 'as-s', nonce: n, created })).verdict).to.equal(Verdict.VERDICT_REPLAYED);
      // The durable store needs no start-up barrier: a fresh request is decided immediately.
      expect((await second.client.checkAndRecord({ scsAsId: 'as-s', nonce: nonce(), created: nowS() })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
    });

    it('only the edge may call CheckAndRecord: another mesh identity gets PERMISSION_DENIED and records nothing', async () => {
      const g = await startGuard(nats.url);
      const n = nonce();
      const created = nowS();
      const err = await failure(g.clientAs('authentication').checkAndRecord({ scsAsId: 'as-p', nonce: n, created }));
      expect(err.code).to.equal('CALLER_NOT_ALLOWED');
      expect(grpcCode(err)).to.equal(GrpcStatus.PERMISSION_DENIED);
      expect(await storedKeys(nats.url)).not.to.include(nonceKey('as-p', n));
      // Positive control: the same request from the edge is the first to be decided.
      expect((await g.client.checkAndRecord({ scsAsId: 'as-p', nonce: n, created })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
    });

    it('refuses malformed input with INVALID_INPUT and records nothing', async () => {
      const g = await startGuard(nats.url);
      const created = nowS();
      const good = nonce();
      const before = (await storedKeys(nats.url)).length;
      const bad = [
        { scsAsId: 'as-i', nonce: '', created },
        { scsAsId: 'as-i', nonce: 'A'.repeat(10 * 1024), created },
        { scsAsId: 'as-i', nonce: `${good} x`, created },
        // The T8 profile's nonce: 96 bits, or characters outside unpadded base64url, are refused.
        { scsAsId: 'as-i', nonce: randomBytes(12).toString('base64url'), created },
        { scsAsId: 'as-i', nonce: `${good.slice(0, 20)}:/=`, created },
        { scsAsId: 'as-i', nonce: randomBytes(16).toString('base64'), created },
        { scsAsId: 'as-*', nonce: good, created },
        { scsAsId: '>', nonce: good, created },
        { scsAsId: 'as i', nonce: good, created },
        { scsAsId: '', nonce: good, created },
        { scsAsId: 'as-i', nonce: good, created: -created },
        { scsAsId: 'as-i', nonce: good, created: 0 },
      ];
      for (const req of bad) {
        const err = await failure(g.client.checkAndRecord(req));
        expect(err.code, JSON.stringify(req).slice(0, 60)).to.equal('INVALID_INPUT');
        expect(grpcCode(err)).to.equal(GrpcStatus.INVALID_ARGUMENT);
        expect(err.message).not.to.include(good);
      }
      expect((await storedKeys(nats.url)).length).to.equal(before);
      expect((await g.client.checkAndRecord({ scsAsId: 'as-i', nonce: good, created })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      expect((await storedKeys(nats.url)).length).to.equal(before + 1);
    });

    it('answers UNAVAILABLE when the store does not answer in time (hung NATS), never ACCEPTED', async () => {
      const relay = await startPausableRelay(nats.port);
      try {
        const g = await startGuard(relay.url, { env: { REPLAY_STORE_TIMEOUT_MS: '300' } });
        expect((await g.client.checkAndRecord({ scsAsId: 'as-h', nonce: nonce(), created: nowS() })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
        relay.pause();
        const started = Date.now();
        const err = await failure(g.client.checkAndRecord({ scsAsId: 'as-h', nonce: nonce(), created: nowS() }, { deadlineMs: 3_000 }));
        expect(err.code).to.equal('UNAVAILABLE');
        expect(grpcCode(err)).to.equal(GrpcStatus.UNAVAILABLE);
        expect(err.message).to.match(/did not answer within 300 ms/);
        expect(Date.now() - started).to.be.below(2_000);
        // A caller deadline shorter than the store timeout ends the call first: still no verdict.
        const short = await failure(g.client.checkAndRecord({ scsAsId: 'as-h', nonce: nonce(), created: nowS() }, { deadlineMs: 100 }));
        expect(short.code).to.equal('DEADLINE_EXCEEDED');
        relay.resume();
        expect((await g.client.checkAndRecord({ scsAsId: 'as-h', nonce: nonce(), created: nowS() })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      } finally {
        for (const g of [...running].reverse()) await g.stop();
        await relay.close();
      }
    });
  });

  describe('when NATS goes away', () => {
    let nats: NatsServerProcess;
    beforeEach(async () => {
      nats = await startNatsServer({ secured: { stateDir, trustDomain: TD } });
    });
    afterEach(async () => {
      for (const g of [...running].reverse()) await g.stop();
      await nats?.dispose();
    });

    it('fails closed with UNAVAILABLE and NOT_SERVING while NATS is down, then recovers by itself (catalogue 52)', async () => {
      const g = await startGuard(nats.url);
      const before = nonce();
      const created = nowS();
      expect((await g.client.checkAndRecord({ scsAsId: 'as-d', nonce: before, created })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      await nats.stop();
      await waitFor('NOT_SERVING', async () => (await g.health()) === 'NOT_SERVING');
      const during = nonce();
      for (const n of [during, before]) {
        const err = await failure(g.client.checkAndRecord({ scsAsId: 'as-d', nonce: n, created: nowS() }));
        expect(err.code).to.equal('UNAVAILABLE');
        expect(err.message).to.match(/unreachable/);
        expect(grpcCode(err)).to.equal(GrpcStatus.UNAVAILABLE);
      }
      await nats.restart();
      await waitFor('SERVING again', async () => (await g.health()) === 'SERVING');
      // Decides again, from the same durable history: the old nonce is still a replay.
      expect((await g.client.checkAndRecord({ scsAsId: 'as-d', nonce: before, created })).verdict).to.equal(Verdict.VERDICT_REPLAYED);
      // The outage recorded nothing, so the request refused with 503 is decided afresh.
      expect(await storedKeys(nats.url)).not.to.include(nonceKey('as-d', during));
      expect((await g.client.checkAndRecord({ scsAsId: 'as-d', nonce: during, created: nowS() })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
    });

    it('raises a barrier when NATS comes back without the nonce stream (store flushed): old requests are undecidable, not accepted', async () => {
      let clock = Date.now();
      const T = Math.floor(clock / 1000);
      const g = await startGuard(nats.url, { now: () => clock });
      const n = nonce();
      expect((await g.client.checkAndRecord({ scsAsId: 'as-f', nonce: n, created: T })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      await nats.stop();
      rmSync(join(nats.storeDir, 'jetstream'), { recursive: true, force: true });
      await nats.restart();
      await waitFor('SERVING again', async () => (await g.health()) === 'SERVING');
      expect(await storedKeys(nats.url), 'the stream came back empty').to.deep.equal([]);
      // The replay of n would be accepted by the empty store; the barrier refuses to decide it.
      const err = await failure(g.client.checkAndRecord({ scsAsId: 'as-f', nonce: n, created: T }));
      expect(err.code).to.equal('UNAVAILABLE');
      expect(err.message).to.match(/lost its history/);
      expect(g.logs.some(l => l.includes('the nonce stream vanished'))).to.equal(true);
      expect(await storedKeys(nats.url)).to.deep.equal([]);
      // Requests signed after the loss (beyond skew) are decided normally.
      clock += 11_000;
      expect((await g.client.checkAndRecord({ scsAsId: 'as-f', nonce: nonce(), created: T + 11 })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
    });
    it('notices the stream deleted under it (NATS still up), recreates it behind a barrier, and never accepts the old nonce', async () => {
      let clock = Date.now();
      const T = Math.floor(clock / 1000);
      const g = await startGuard(nats.url, { now: () => clock });
      const n = nonce();
      expect((await g.client.checkAndRecord({ scsAsId: 'as-x', nonce: n, created: T })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      await withNats(nats.url, async nc => (await nc.jetstreamManager()).streams.delete(STREAM));
      // What the guard has seen it still refuses from memory; the next write finds the stream gone.
      expect((await g.client.checkAndRecord({ scsAsId: 'as-x', nonce: n, created: T })).verdict).to.equal(Verdict.VERDICT_REPLAYED);
      expect((await failure(g.client.checkAndRecord({ scsAsId: 'as-x', nonce: nonce(), created: T }))).code).to.equal('UNAVAILABLE');
      await waitFor('SERVING again', async () => (await g.health()) === 'SERVING');
      const err = await failure(g.client.checkAndRecord({ scsAsId: 'as-x', nonce: nonce(), created: T }));
      expect(err.code).to.equal('UNAVAILABLE');
      expect(err.message).to.match(/lost its history/);
      expect(g.logs.some(l => l.includes('the nonce stream vanished'))).to.equal(true);
      expect((await failure(g.client.checkAndRecord({ scsAsId: 'as-x', nonce: n, created: T }))).message).to.match(/lost its history/);
      expect(await storedKeys(nats.url)).to.deep.equal([]);
      clock += 11_000;
      expect((await g.client.checkAndRecord({ scsAsId: 'as-x', nonce: nonce(), created: T + 11 })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
    });
  });

  describe('stream it cannot trust', () => {
    let nats: NatsServerProcess;
    beforeEach(async () => {
      nats = await startNatsServer({ secured: { stateDir, trustDomain: TD } });
    });
    afterEach(async () => {
      for (const g of [...running].reverse()) await g.stop();
      await nats?.dispose();
    });

    it('with a memory-backed stream it raises a start-up barrier: nothing created before start + skew is decided', async () => {
      await withNats(nats.url, async nc => {
        await (await nc.jetstreamManager()).streams.add({ ...streamConfig({ ttlMs: nonceTtlMs(60, 10) }), storage: StorageType.Memory });
      });
      const T = nowS();
      let clock = T * 1000 + 200;
      const g = await startGuard(nats.url, { now: () => clock });
      expect(await g.health()).to.equal('SERVING');
      for (const created of [T - 30, T, T + 10]) {
        const err = await failure(g.client.checkAndRecord({ scsAsId: 'as-m', nonce: nonce(), created }));
        expect(err.code).to.equal('UNAVAILABLE');
        expect(err.message).to.match(/lost its history/);
      }
      expect((await g.client.checkAndRecord({ scsAsId: 'as-m', nonce: nonce(), created: T - 61 })).verdict).to.equal(Verdict.VERDICT_STALE);
      expect(await storedKeys(nats.url)).to.deep.equal([]);
      clock = (T + 11) * 1000;
      expect((await g.client.checkAndRecord({ scsAsId: 'as-m', nonce: nonce(), created: T + 11 })).verdict).to.equal(Verdict.VERDICT_ACCEPTED);
      expect(await storedKeys(nats.url)).to.have.length(1);
    });

    it('refuses to start on a stream whose max age is shorter than the nonce TTL, or that evicts nonces; starts once the administrator fixed it', async () => {
      await withNats(nats.url, async nc => {
        await (await nc.jetstreamManager()).streams.add(streamConfig({ ttlMs: 5_000 }));
      });
      const short = await startGuard(nats.url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(short).to.be.instanceOf(AeseError);
      expect((short as AeseError).code).to.equal('FAILED_PRECONDITION');
      expect((short as AeseError).message).to.match(/keeps nonces 5 s, less than the replay window needs \(\d+ s\): as the JetStream administrator, raise its max age/);
      // Positive control: the administrator raises it; the guard starts and leaves it as it is.
      await withNats(nats.url, async nc => (await nc.jetstreamManager()).streams.update(STREAM, { max_age: nonceTtlMs(60, 10) * 1_000_000 }));
      const g = await startGuard(nats.url);
      const info = await withNats(nats.url, async nc => (await nc.jetstreamManager()).streams.info(STREAM));
      expect(info.config.max_age).to.equal(nonceTtlMs(60, 10) * 1_000_000);
      await g.stop();

      await withNats(nats.url, async nc => {
        const jsm = await nc.jetstreamManager();
        await jsm.streams.delete(STREAM);
        await jsm.streams.add({ ...streamConfig({ ttlMs: nonceTtlMs(60, 10) }), max_msgs: 1000, discard: DiscardPolicy.Old });
      });
      const err = await startGuard(nats.url).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(AeseError);
      expect((err as AeseError).code).to.equal('FAILED_PRECONDITION');
    });
  });
});
