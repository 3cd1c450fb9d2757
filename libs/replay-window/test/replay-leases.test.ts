/**
 * ReplayLeases against a real, secured nats-server: one holder per AS, the takeover barrier runs
 * before ownership, and a lease passes to another edge at once when given back, only after it aged
 * out when its holder just went silent, and when its holder stopped using it.
 */
import { expect } from 'chai';
import { connect } from 'nats';
import type { KV, KvEntry, NatsConnection } from 'nats';
import { createLogger } from '@aese/logger';
import { initPki } from '@aese/pki';
import { asTokenOf, REPLAY_LEASES_BUCKET, ReplayLeases } from '@aese/replay-window';
import { connectNatsAs, eventually, natsTlsOptions, startNatsServer, tempDir } from '@aese/testing';
import type { NatsServerProcess } from '@aese/testing';

const TD = 'scef.test';
const LEASE_MS = 1_500;

interface Holder {
  readonly name: string;
  readonly leases: ReplayLeases;
  readonly nc: NatsConnection;
  /** Every AS token prepare() was called with, in order. */
  readonly prepared: string[];
}

const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));

describe('ReplayLeases (real nats-server, secured)', function () {
  this.timeout(30_000);
  let dir: ReturnType<typeof tempDir>;
  let nats: NatsServerProcess;
  let admin: NatsConnection;
  let bucket: KV;
  const holders: Holder[] = [];
  const logger = createLogger({ service: 'replay-leases-test', level: 'silent' });

  async function holder(name: string, prepare: (asToken: string) => Promise<void> = async () => undefined): Promise<Holder> {
    const nc = await connect({ servers: nats.url, ...natsTlsOptions(dir.path, 'edge') });
    const prepared: string[] = [];
    const leases = await ReplayLeases.open(nc, {
      holder: name,
      leaseMs: LEASE_MS,
      logger,
      prepare: async token => {
        prepared.push(token);
        await prepare(token);
      },
    });
    const h = { name, leases, nc, prepared };
    holders.push(h);
    return h;
  }

  /** The lease key of an AS as NATS holds it now (read by the administrator). */
  const entry = (scsAsId: string): Promise<KvEntry | null> => bucket.get(asTokenOf(scsAsId));
  const holderOf = async (scsAsId: string): Promise<string | undefined> => {
    const e = await entry(scsAsId);
    return e?.operation === 'PUT' ? (JSON.parse(Buffer.from(e.value).toString('utf8')) as { holder: string }).holder : undefined;
  };
  /** Asks for the lease the way an edge does on each request, until it holds it. */
  const take = (h: Holder, scsAsId: string, timeoutMs = 5_000): Promise<void> =>
    eventually(
      () => {
        h.leases.want(scsAsId);
        return h.leases.owns(scsAsId);
      },
      timeoutMs,
      `${h.name} owning ${scsAsId}`,
    );

  before(async function () {
    this.timeout(60_000);
    dir = tempDir('aese-replay-leases');
    await initPki({ stateDir: dir.path, trustDomain: TD });
    nats = await startNatsServer({ secured: { stateDir: dir.path, trustDomain: TD } });
    // The edge creates the bucket (its TTL is the lease time); the administrator only reads it.
    const first = await holder('edge-0');
    admin = await connectNatsAs(nats.url, dir.path, 'nats-admin');
    bucket = await admin.jetstream().views.kv(REPLAY_LEASES_BUCKET, { bindOnly: true });
    expect((await bucket.status()).ttl).to.equal(LEASE_MS);
    await first.leases.close();
  });
  afterEach(async () => {
    for (const h of holders.splice(0)) {
      await h.leases.close();
      await h.nc.close().catch(() => undefined);
    }
  });
  after(async () => {
    await admin?.close();
    await nats?.dispose();
    dir?.remove();
  });

  it('one holder at a time: while A renews and uses its lease, B never gets it; B can take another AS (control)', async () => {
    const a = await holder('edge-a');
    const b = await holder('edge-b');
    await take(a, 'as-x');
    const firstRevision = (await entry('as-x'))!.revision;
    // Longer than the idle limit (3 lease times): a lease in use is kept, renewed, never lost.
    const until = Date.now() + 3.5 * LEASE_MS;
    let aOwned = 0;
    let polls = 0;
    while (Date.now() < until) {
      b.leases.want('as-x');
      expect(b.leases.owns('as-x'), 'B owns the AS A holds').to.equal(false);
      polls++;
      if (a.leases.owns('as-x')) aOwned++;
      await sleep(50);
    }
    expect(b.prepared, 'B never passed the takeover barrier for it').to.deep.equal([]);
    expect(await holderOf('as-x')).to.equal('edge-a');
    expect((await entry('as-x'))!.revision, 'A renewed its lease').to.be.greaterThan(firstRevision);
    expect(aOwned, `A owned the AS in ${aOwned} of ${polls} polls`).to.be.at.least(polls * 0.9);
    expect(a.leases.owns('as-x')).to.equal(true);
    expect(a.leases.holding()).to.deep.equal(['as-x']);

    await take(b, 'as-y');
    expect(b.leases.holding()).to.deep.equal(['as-y']);
    expect(await holderOf('as-y')).to.equal('edge-b');
  });

  it('calls prepare with the AS token before owning; a failing prepare leaves no lease, so another edge takes it at once', async () => {
    let release: () => void = () => undefined;
    const barrier = new Promise<void>(r => (release = r));
    const a = await holder('edge-a', async token => {
      if (token === asTokenOf('as.failing')) throw new Error('history unreadable');
      await barrier;
    });
    const b = await holder('edge-b');

    a.leases.want('as.slow');
    await eventually(() => a.prepared.length === 1, 5_000, 'prepare called');
    expect(a.prepared).to.deep.equal(['as=slow']);
    // The key is taken while the history loads, yet A decides nothing until it is loaded.
    expect(await holderOf('as.slow')).to.equal('edge-a');
    expect(a.leases.owns('as.slow')).to.equal(false);
    expect(a.leases.holding()).to.deep.equal([]);
    b.leases.want('as.slow');
    await sleep(300);
    expect(b.leases.owns('as.slow')).to.equal(false);
    expect(b.prepared).to.deep.equal([]);
    release();
    await eventually(() => a.leases.owns('as.slow'), 5_000, 'A owning after prepare');

    const t0 = Date.now();
    a.leases.want('as.failing');
    await eventually(async () => (await entry('as.failing'))?.operation === 'DEL', 5_000, 'the lease key deleted after the failed prepare');
    expect(a.prepared).to.deep.equal(['as=slow', 'as=failing']);
    expect(a.leases.owns('as.failing')).to.equal(false);
    expect(a.leases.holding()).to.deep.equal(['as.slow']);
    // Deleted, not left to age out: B takes it before the lease time could have passed.
    await take(b, 'as.failing', LEASE_MS);
    expect(Date.now() - t0, 'ms until B owned the AS whose prepare failed at A').to.be.below(LEASE_MS);
    expect(b.prepared).to.deep.equal(['as=failing']);
    expect(await holderOf('as.failing')).to.equal('edge-b');
  });

  it('a lease given back on close passes to another edge at once', async () => {
    const a = await holder('edge-a');
    const b = await holder('edge-b');
    await take(a, 'as-handover');
    const lastWrite = (await entry('as-handover'))!;
    await a.leases.close();
    expect((await entry('as-handover'))!.operation).to.equal('DEL');
    expect(a.leases.owns('as-handover')).to.equal(false);
    await take(b, 'as-handover');
    // Renewed or not, A's key would have lived until lastWrite + lease time.
    expect(Date.now()).to.be.below(lastWrite.created.getTime() + LEASE_MS);
    expect(await holderOf('as-handover')).to.equal('edge-b');
  });

  it('a holder that goes silent keeps its lease until it ages out: B gets it only then, and never while A still decides', async () => {
    const a = await holder('edge-a');
    const b = await holder('edge-b');
    await take(a, 'as-silent');
    // A's connection drops without A giving anything back (a crashed or cut-off edge).
    await a.nc.close();
    const last = (await entry('as-silent'))!;
    expect(last.operation).to.equal('PUT');
    const expiresAt = last.created.getTime() + LEASE_MS;
    let bOwnedAt: number | undefined;
    while (bOwnedAt === undefined) {
      if (Date.now() > expiresAt + 5_000) throw new Error('B did not get the lease within 5 s of its expiry');
      b.leases.want('as-silent');
      const bOwns = b.leases.owns('as-silent');
      const aOwns = a.leases.owns('as-silent');
      expect(bOwns && aOwns, 'both edges deciding for the AS at once').to.equal(false);
      if (bOwns) bOwnedAt = Date.now();
      else await sleep(20);
    }
    // 10 ms for the server's millisecond rounding of the write time.
    expect(bOwnedAt - expiresAt, 'ms from the lease expiry to B owning it').to.be.at.least(-10);
    expect(a.leases.owns('as-silent')).to.equal(false);
    expect(await holderOf('as-silent')).to.equal('edge-b');
  });

  it('gives back a lease nobody used for 3 lease times, and keeps renewing it before that', async () => {
    const a = await holder('edge-a');
    const b = await holder('edge-b');
    await take(a, 'as-idle');
    // take() ended on an owns() call: the last use.
    const lastUse = Date.now();
    // Still renewed while idle: the key outlives its first lease time twice over.
    await eventually(() => Date.now() - lastUse >= 2 * LEASE_MS || !a.leases.holding().includes('as-idle'), 3 * LEASE_MS, 'two lease times');
    expect(a.leases.holding()).to.deep.equal(['as-idle']);
    expect(await holderOf('as-idle')).to.equal('edge-a');
    await eventually(() => !a.leases.holding().includes('as-idle'), 2 * LEASE_MS + 3_000, 'the idle lease given back');
    const idleFor = Date.now() - lastUse;
    expect(idleFor, 'ms idle before the lease was given back').to.be.at.least(3 * LEASE_MS);
    // Deleted rather than left to age out, so B takes it at once.
    await eventually(async () => (await entry('as-idle'))?.operation === 'DEL', 2_000, 'the idle lease key deleted');
    await take(b, 'as-idle', LEASE_MS);
    expect(await holderOf('as-idle')).to.equal('edge-b');
  });
});
