import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { connect } from 'nats';
import { CLUSTER_NODES, COMPOSE_NATS_TLS, natsStatePaths, prepareState } from '@aese/cli';
import { KV_BUCKETS } from '@aese/nats';
import { pkiLayout } from '@aese/pki';
import { connectNatsAs, freePort, NATS_SERVER_BIN, tempDir, waitForPort } from '@aese/testing';

/**
 * The three-node cluster configurations `aese pki init` writes are the same trust model as the
 * single server: run as they are (only container paths, host names and ports mapped onto this
 * machine), they form a JetStream cluster that places three replicas, refuses anonymous clients
 * and keeps each identity to its permissions.
 */
describe('deployment: the three-node NATS cluster configurations', function () {
  this.timeout(90_000);

  it('form a JetStream cluster with replicas 3 that enforces the trust model', async () => {
    const work = tempDir('aese-nats-cluster-conf');
    const children: ChildProcess[] = [];
    try {
      await prepareState({ stateDir: work.path, trustDomain: 'scef.local' });
      const layout = pkiLayout(work.path);
      const clientPorts = await Promise.all(CLUSTER_NODES.map(() => freePort()));
      const routePorts = await Promise.all(CLUSTER_NODES.map(() => freePort()));
      CLUSTER_NODES.forEach((node, i) => {
        let conf = readFileSync(natsStatePaths(work.path).clusterConfigs[i], 'utf8');
        conf = conf
          .replaceAll(COMPOSE_NATS_TLS.certFile, layout.natsServer.cert)
          .replaceAll(COMPOSE_NATS_TLS.keyFile, layout.natsServer.key)
          .replaceAll(COMPOSE_NATS_TLS.caFile, layout.meshCa.cert)
          .replace('"/data/jetstream"', JSON.stringify(join(work.path, `js-${node}`)))
          .replace('"0.0.0.0:4222"', `"127.0.0.1:${clientPorts[i]}"`)
          .replace('"0.0.0.0:6222"', `"127.0.0.1:${routePorts[i]}"`)
          .replace(/^http: .*$/m, '');
        CLUSTER_NODES.forEach((other, j) => (conf = conf.replace(`"tls://${other}:6222"`, `"tls://127.0.0.1:${routePorts[j]}"`)));
        const file = join(work.path, `${node}.conf`);
        writeFileSync(file, conf);
        children.push(spawn(NATS_SERVER_BIN, ['-c', file], { stdio: 'ignore' }));
      });
      for (const port of clientPorts) await waitForPort('127.0.0.1', port);
      const url = clientPorts.map(p => `tls://127.0.0.1:${p}`).join(',');

      const admin = await connectNatsAs(url, work.path, 'nats-admin');
      try {
        // Replicas 3 can be placed once the routes (mutual TLS) are up and a meta leader is elected.
        const until = Date.now() + 60_000;
        for (;;) {
          try {
            await (await admin.jetstreamManager({ timeout: 2_000 })).streams.add({ name: 'R3_PROBE', subjects: ['r3.probe'], num_replicas: 3 });
            break;
          } catch (err) {
            if (Date.now() > until) throw err;
            await new Promise(r => setTimeout(r, 250));
          }
        }
        expect((await (await admin.jetstreamManager()).streams.info('R3_PROBE')).cluster?.replicas).to.have.length(2);
      } finally {
        await admin.close();
      }

      let anonymous = 'connected';
      await connect({ servers: url.replaceAll('tls://', 'nats://').split(','), timeout: 3_000, maxReconnectAttempts: 0 })
        .then(nc => nc.close())
        .catch((err: Error) => (anonymous = err.message));
      expect(anonymous).not.to.equal('connected');

      // A route is every message unfiltered: a mesh certificate that is not the NATS server's
      // (the edge's, say) cannot open one. A rogue node routing with it to node 0 sees nothing of
      // the cluster and gets nothing into it.
      const rogueClient = await freePort();
      const rogueConf = join(work.path, 'rogue.conf');
      writeFileSync(
        rogueConf,
        [
          `listen: "127.0.0.1:${rogueClient}"`,
          'cluster {',
          '  name: "aese"',
          `  listen: "127.0.0.1:${await freePort()}"`,
          `  routes: ["tls://127.0.0.1:${routePorts[0]}"]`,
          `  tls { cert_file: ${JSON.stringify(layout.services.edge.cert)}, key_file: ${JSON.stringify(layout.services.edge.key)}, ca_file: ${JSON.stringify(layout.meshCa.cert)}, verify: true }`,
          '}',
        ].join('\n'),
      );
      children.push(spawn(NATS_SERVER_BIN, ['-c', rogueConf], { stdio: 'ignore' }));
      await waitForPort('127.0.0.1', rogueClient);
      const watcher = await connectNatsAs(url, work.path, 'nats-admin');
      const rogue = await connect({ servers: `nats://127.0.0.1:${rogueClient}` });
      try {
        const seen: string[] = [];
        const sub = watcher.subscribe('rogue.>', { callback: (_e, m) => seen.push(m.subject) });
        await watcher.flush();
        // Give the route every chance to come up (it retries every second or so), publishing meanwhile.
        for (let i = 0; i < 30 && seen.length === 0; i++) {
          rogue.publish('rogue.probe');
          await rogue.flush();
          await new Promise(r => setTimeout(r, 100));
        }
        expect(seen, 'a message from the rogue node reached the cluster').to.deep.equal([]);
        sub.unsubscribe();
      } finally {
        await rogue.close();
        await watcher.close();
      }

      const edge = await connectNatsAs(url, work.path, 'edge');
      try {
        const forged = await edge
          .jetstream()
          .publish(`$KV.${KV_BUCKETS.signingKeys}.forged`, Buffer.from('{}'))
          .then(
            () => 'stored',
            (err: Error) => err.message,
          );
        expect(forged).to.match(/permissions violation/i);
      } finally {
        await edge.close();
      }
    } finally {
      for (const c of children) c.kill('SIGTERM');
      await Promise.all(children.map(c => (c.exitCode === null ? new Promise(r => c.once('exit', r)) : Promise.resolve())));
      work.remove();
    }
  });
});
