import { expect } from 'chai';
import { createMeshClient } from '@aese/grpc-client';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import { CapabilityExposureServiceClient } from '@aese/protos/capability-exposure/v1';
import { asTokenOf, REPLAY_WINDOW_STREAM, REPLAY_WINDOW_SUBJECT_PREFIX } from '@aese/replay-window';
import { aese, expectOneLineError } from './support/cli.ts';
import type { CliResult } from './support/cli.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';

interface Report {
  service: string;
  identity: string;
  requests: number;
  ok: number;
  failed: number;
  throughputPerS: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number };
  failures: Record<string, number>;
  notes: string[];
}

const SHORT = ['--duration', '1s', '--warmup', '0', '--concurrency', '2'];

function reportOf(res: CliResult): Report {
  expect(res.code, res.stderr).to.equal(0);
  expect(res.stderr).to.equal('');
  const r = JSON.parse(res.stdout) as Report;
  expect(r.failed, JSON.stringify(r.failures)).to.equal(0);
  expect(r.failures).to.deep.equal({});
  expect(r.ok).to.be.greaterThan(0);
  expect(r.requests).to.equal(r.ok);
  expect(r.latencyMs.p50).to.be.greaterThan(0);
  expect(r.latencyMs.p99).to.be.at.least(r.latencyMs.p50);
  expect(r.latencyMs.max).to.be.at.least(r.latencyMs.p999);
  return r;
}

describe('aese bench (CLI binary against a running mesh)', function () {
  this.timeout(90_000);
  let mesh: TestMesh;
  let env: Record<string, string>;

  before(async function () {
    // Starting five services takes long on a loaded machine.
    this.timeout(180_000);
    // The bench's default notification destination is a loopback receiver the operator allows.
    mesh = await startTestMesh({ extraEnv: { SIM_TICK_MS: '0', NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1:9443' } });
    env = {
      AESE_STATE_DIR: mesh.stateDir,
      AESE_TRUST_DOMAIN: mesh.trustDomain,
      ...Object.fromEntries(Object.entries(mesh.env).filter(([k]) => k.endsWith('_ADDR'))),
    };
  });
  after(async () => {
    await mesh?.stop();
  });

  /** Nonces the replay stream holds for one AS: each message on the AS's subject is a batch of 32-byte digests. */
  const storedNonces = async (scsAsId: string): Promise<number> => {
    const subject = `${REPLAY_WINDOW_SUBJECT_PREFIX}.${asTokenOf(scsAsId)}`;
    const nc = await mesh.natsConnect('nats-admin');
    try {
      const last = await (await nc.jetstreamManager()).streams.getMessage(REPLAY_WINDOW_STREAM, { last_by_subj: subject }).then(
        m => m.seq,
        (err: Error) => {
          if (/no message found/i.test(err.message)) return 0;
          throw err;
        },
      );
      let nonces = 0;
      if (last === 0) return nonces;
      const consumer = await nc.jetstream().consumers.get(REPLAY_WINDOW_STREAM, { filterSubjects: subject });
      let seq = 0;
      while (seq < last) {
        let got = 0;
        for await (const m of await consumer.fetch({ max_messages: 1000, expires: 5_000 })) {
          got++;
          seq = m.seq;
          expect(m.data.length % 32).to.equal(0);
          nonces += m.data.length / 32;
          if (seq >= last) break;
        }
        if (got === 0) throw new Error(`reading ${subject} stalled at ${seq} of ${last}`);
      }
      return nonces;
    } finally {
      await nc.close();
    }
  };

  const policyVersion = async (): Promise<{ version: number; entitiesJson: string }> => {
    const admin = createMeshClient(AuthorizationServiceClient, { address: mesh.env['AUTHORIZATION_ADDR'], tls: mesh.tls('operator'), serverId: mesh.id('authorization') });
    try {
      return await admin.getPolicies({});
    } finally {
      admin.close();
    }
  };

  it('replay-guard: every call records a fresh nonce as the edge; nothing fails', async () => {
    const before = await storedNonces('bench-rg');
    const r = reportOf(await aese(['bench', 'replay-guard', '--as', 'bench-rg', '--json', ...SHORT], env));
    expect(r.identity).to.equal(mesh.id('edge'));
    // One nonce per accepted call, plus the preflight call's: none replayed, none lost.
    expect((await storedNonces('bench-rg')) - before).to.equal(r.ok + 1);
  });

  it('authorization: without a grant it stops with one line naming the grant; with --grant it decides, then withdraws the grant', async () => {
    const v0 = await policyVersion();
    const refused = await aese(['bench', 'authorization', '--as', 'bench-az', ...SHORT], env);
    expectOneLineError(refused, 1, /denied .*expects bench-az to be granted location .*aese policy grant bench-az --api 3gpp-monitoring-event/);
    expect(refused.stdout).to.equal('');
    expect((await policyVersion()).version).to.equal(v0.version);

    const r = reportOf(await aese(['bench', 'authorization', '--as', 'bench-az', '--grant', '--json', ...SHORT], env));
    expect(r.identity).to.equal(mesh.id('capability-exposure'));
    expect(r.notes.join('\n'))
      .to.match(/granted bench-az 3gpp-monitoring-event .*for the run/)
      .and.match(/withdrew the grant/);
    const v2 = await policyVersion();
    expect(v2.version).to.equal(v0.version + 2);
    const entity = (JSON.parse(v2.entitiesJson) as { uid: { id: string }; tags?: Record<string, unknown> }[]).find(e => e.uid.id === 'bench-az');
    expect(entity?.tags ?? {}).to.not.have.property('3gpp-monitoring-event');
  });

  it('capability-exposure: GETs the subscription it created as the edge, then deletes it', async () => {
    const r = reportOf(await aese(['bench', 'capability-exposure', '--as', 'bench-ce', '--grant', '--json', ...SHORT], env));
    expect(r.identity).to.equal(mesh.id('edge'));
    const notes = r.notes.join('\n');
    const id = /created the subscription \/3gpp-monitoring-event\/v1\/bench-ce\/subscriptions\/(\S+)/.exec(notes)?.[1];
    expect(id, notes).to.be.a('string');
    expect(notes).to.match(/deleted the subscription/);
    // Granted again, the AS finds no subscription: the bench's one was deleted, no other made.
    const granted = await aese(['policy', 'grant', 'bench-ce', '--api', '3gpp-monitoring-event', '--category', 'location', '--any-target'], env);
    expect(granted.code, granted.stderr).to.equal(0);
    const edge = createMeshClient(CapabilityExposureServiceClient, {
      address: mesh.env['CAPABILITY_EXPOSURE_ADDR'],
      tls: mesh.tls('edge'),
      serverId: mesh.id('capability-exposure'),
    });
    try {
      const get = (path: string) =>
        edge.invoke({ scsAsId: 'bench-ce', method: 'GET', path, contentType: '', body: Buffer.alloc(0), scopes: ['3gpp-monitoring-event'], apiRoot: 'https://localhost:8443' });
      const collection = '/3gpp-monitoring-event/v1/bench-ce/subscriptions';
      const list = await get(collection);
      expect(list.status).to.equal(200);
      expect(JSON.parse(Buffer.from(list.body).toString('utf8'))).to.deep.equal([]);
      expect((await get(`${collection}/${id}`)).status).to.equal(404);
    } finally {
      edge.close();
    }
  });

  it('crypto: signs as authentication (access-token) and as the edge (message-signing); with --rate the calls are those due', async () => {
    const token = reportOf(await aese(['bench', 'crypto', '--json', ...SHORT], env));
    expect(token.identity).to.equal(mesh.id('authentication'));
    const paced = reportOf(await aese(['bench', 'crypto', '--purpose', 'message-signing', '--rate', '40', '--json', ...SHORT], env));
    expect(paced.identity).to.equal(mesh.id('edge'));
    // Open loop: call i is due at i/40 s, so a 1 s run makes exactly 40 calls.
    expect(paced.requests).to.equal(40);
  });

  it('prints the figures as text', async () => {
    const res = await aese(['bench', 'crypto', ...SHORT], env);
    expect(res.code, res.stderr).to.equal(0);
    expect(res.stdout).to.match(/^bench crypto: Sign \(access-token\) at localhost:\d+ as spiffe:\/\/scef\.test\/svc\/authentication\n/);
    expect(res.stdout).to.match(/requests \d+: \d+ ok, 0 failed; throughput [\d.]+\/s/);
    expect(res.stdout).to.match(/latency ms: p50 [\d.]+ {2}p90 [\d.]+ {2}p99 [\d.]+ {2}p99\.9 [\d.]+ {2}max [\d.]+/);
    expect(res.stdout).to.match(/failures by code: none/);
  });

  it('a bad service or option is a one-line usage error', async () => {
    expectOneLineError(await aese(['bench', 'nats'], env), 2, /unknown command "bench nats"; expected one of: replay-guard, authorization, capability-exposure, crypto/);
    expectOneLineError(await aese(['bench', 'crypto', '--concurrency', '0'], env), 2, /--concurrency must be a whole number/);
    expectOneLineError(await aese(['bench', 'crypto', '--duration', '10x'], env), 2, /--duration must be a time/);
    expectOneLineError(await aese(['bench', 'crypto', '--purpose', 'event-signing'], env), 2, /--purpose/);
    expectOneLineError(await aese(['bench', 'authorization', '--target', 'imsi:1'], env), 2, /--target/);
    expectOneLineError(await aese(['bench', 'crypto', '--bogus'], env), 2, /bogus/);
  });
});
