import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { Ajv } from 'ajv';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import { parse } from 'yaml';
import { COMPOSE_NATS_TLS, natsStatePaths, prepareState, START_ORDER } from '@aese/cli';
import { createLogger } from '@aese/logger';
import type { Logger } from '@aese/logger';
import { MESH_SERVICES, pkiLayout } from '@aese/pki';
import { COMMON_SETTINGS, MESH_ENDPOINTS, portSetting, REPO_ROOT } from '@aese/runtime';
import { startNatsServer, tempDir } from '@aese/testing';
import { meshCallsOf } from './support/deploy.js';
import { BUILD_ENTRIES, PROBE_LAUNCHER } from '../scripts/build.ts';

/**
 * There is no container engine where the tests run, so the deployment files are checked against
 * the code instead: every service is deployed, every variable given to it is one it reads, each
 * container gets only the key material it needs, and only the edge is reachable from outside.
 */

interface ComposeService {
  image?: string;
  build?: { context?: string; dockerfile?: string; args?: Record<string, string> };
  command?: string | string[];
  environment?: Record<string, string | number | null> | string[];
  ports?: (string | { target: number; published?: string | number })[];
  expose?: unknown[];
  volumes?: (string | { source: string; target: string; read_only?: boolean })[];
  secrets?: (string | { source: string; target?: string })[];
  user?: string;
  read_only?: boolean;
  cap_drop?: string[];
  healthcheck?: { test?: string[] };
  depends_on?: Record<string, { condition?: string }>;
}

interface ComposeFile {
  services: Record<string, ComposeService>;
  secrets?: Record<string, { file?: string }>;
}

const composeText = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
const compose = parse(composeText, { merge: true }) as ComposeFile;
const dockerfile = readFileSync(join(REPO_ROOT, 'deploy', 'Dockerfile'), 'utf8');

/** The service folders that hold a runnable service. */
const serviceDirs = readdirSync(join(REPO_ROOT, 'services'), { withFileTypes: true })
  .filter(d => d.isDirectory() && existsSync(join(REPO_ROOT, 'services', d.name, 'src', 'main.ts')))
  .map(d => d.name);

/** Third-party services: NATS and the observability stack. */
const INFRASTRUCTURE = ['nats', 'otel-collector', 'jaeger', 'prometheus'];
const appServices = Object.keys(compose.services).filter(name => !INFRASTRUCTURE.includes(name));

function envOf(svc: ComposeService): Record<string, string> {
  const env = svc.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map(e => [e.split('=')[0], e.slice(e.indexOf('=') + 1)]));
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

interface Mount {
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

function mountsOf(svc: ComposeService): Mount[] {
  return (svc.volumes ?? []).map(v => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, readOnly: v.read_only === true };
    const [source, target, opts] = v.split(':') as [string, string, string | undefined];
    return { source, target, readOnly: (opts ?? '').split(',').includes('ro') };
  });
}

interface SettingLike {
  readonly env: string;
  readonly default?: unknown;
}

function isSettings(value: unknown): value is Record<string, SettingLike> {
  return (
    typeof value === 'object' &&
    value !== null &&
    Object.values(value).length > 0 &&
    Object.values(value).every(s => typeof s === 'object' && s !== null && typeof (s as SettingLike).env === 'string')
  );
}

/** Every setting a service reads: the common ones, its port, and each `*_SETTINGS` its server exports. */
async function settingsOf(service: string): Promise<SettingLike[]> {
  const mod = (await import(pathToFileURL(join(REPO_ROOT, 'services', service, 'src', 'server.ts')).href)) as Record<string, unknown>;
  const own = Object.entries(mod)
    .filter(([name, value]) => name.endsWith('_SETTINGS') && isSettings(value))
    .flatMap(([, value]) => Object.values(value as Record<string, SettingLike>));
  return [...Object.values(COMMON_SETTINGS), portSetting(0), ...own];
}

/** Compose's `${VAR:-default}` interpolation, with nothing set: the defaults. */
function interpolateDefaults(value: string): string {
  return value.replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, (_m, d: string) => d);
}

type StartFn = (env: Record<string, string>, logger: Logger) => Promise<{ port: number; stop(): Promise<void> }>;

async function startFunctionOf(service: string): Promise<StartFn> {
  const mod = (await import(pathToFileURL(join(REPO_ROOT, 'services', service, 'src', 'server.ts')).href)) as Record<string, unknown>;
  const entry = Object.entries(mod).find(([name, value]) => /^start[A-Za-z]*Service$/.test(name) && typeof value === 'function');
  if (!entry) throw new Error(`services/${service}/src/server.ts exports no start*Service function`);
  return entry[1] as StartFn;
}

describe('deployment: docker-compose.yml and deploy/', () => {
  it('deploys every service folder, and every mesh identity, plus NATS', () => {
    for (const dir of serviceDirs) expect(compose.services, `services/${dir}`).to.have.property(dir);
    expect(appServices).to.have.members([...MESH_SERVICES]);
    expect(compose.services).to.have.property('nats');
  });

  it('is a valid file of the Compose Specification (its JSON schema)', () => {
    const schema = JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'schemas', 'compose-spec.json'), 'utf8')) as object;
    // The schema names its draft by an https URL Ajv does not know; the draft-07 keywords are Ajv's own.
    const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
    (addFormats as unknown as { default: (a: Ajv) => Ajv }).default(ajv);
    const validate = ajv.compile(schema);
    // Compose validates the file as written (merge keys resolved, `x-` extensions allowed).
    expect(validate(parse(composeText, { merge: true })), ajv.errorsText(validate.errors)).to.equal(true);
    // Positive control for the negative one: the schema refuses an unknown service key.
    const broken = parse(composeText, { merge: true }) as ComposeFile & { services: Record<string, Record<string, unknown>> };
    broken.services['crypto']['helthcheck'] = {};
    expect(validate(broken)).to.equal(false);
  });

  it('checks the health of every service with the gRPC health probe of its image, NATS with its monitoring endpoint', () => {
    for (const name of appServices) {
      expect(compose.services[name].healthcheck?.test, name).to.deep.equal(['CMD', 'node', 'dist/health-probe.mjs', name]);
    }
    for (const name of ['nats', 'otel-collector', 'jaeger', 'prometheus']) expect(compose.services, name).to.have.property(name);
    expect(JSON.stringify(compose.services['nats'].healthcheck)).to.include('/healthz');
  });

  it('starts each service once NATS and every service it calls are healthy, and no later', () => {
    for (const name of appServices) {
      const depends = compose.services[name].depends_on ?? {};
      expect(Object.keys(depends).sort(), name).to.deep.equal(['nats', ...meshCallsOf(name)].sort());
      for (const [dep, d] of Object.entries(depends)) expect(d.condition, `${name} on ${dep}`).to.equal('service_healthy');
    }
    // The graph has no cycle, and START_ORDER (npm start) is one of its orders.
    for (const [i, name] of START_ORDER.entries()) {
      for (const callee of meshCallsOf(name)) expect(START_ORDER.indexOf(callee as (typeof START_ORDER)[number]), `${name} calls ${callee}`).to.be.lessThan(i);
    }
  });

  it('sends traces to the collector, which exports them to Jaeger, and lets Prometheus scrape each metrics port', () => {
    const collector = parse(readFileSync(join(REPO_ROOT, 'deploy', 'otel-collector.yaml'), 'utf8')) as {
      receivers: { otlp: { protocols: { http: { endpoint: string } } } };
      exporters: Record<string, { endpoint: string }>;
      service: { pipelines: { traces: { receivers: string[]; exporters: string[] } } };
    };
    const otlpPort = collector.receivers.otlp.protocols.http.endpoint.split(':')[1];
    const pipeline = collector.service.pipelines.traces;
    expect(pipeline.receivers).to.include('otlp');
    expect(pipeline.exporters.map(e => collector.exporters[e].endpoint)).to.deep.equal(['jaeger:4317']);
    expect(compose.services).to.have.property('jaeger');
    const prometheus = parse(readFileSync(join(REPO_ROOT, 'deploy', 'prometheus.yml'), 'utf8')) as {
      scrape_configs: { metrics_path: string; static_configs: { targets: string[] }[] }[];
    };
    const targets = prometheus.scrape_configs.flatMap(c => c.static_configs.flatMap(s => s.targets));
    for (const name of appServices) {
      const env = envOf(compose.services[name]);
      expect(env['OTEL_EXPORTER_OTLP_ENDPOINT'], name).to.equal(`http://otel-collector:${otlpPort}`);
      expect(targets, name).to.include(`${name}:${env['METRICS_PORT']}`);
    }
    expect(prometheus.scrape_configs.map(c => c.metrics_path)).to.deep.equal(['/metrics']);
  });

  it('builds each service from the one Dockerfile with its own SERVICE argument', () => {
    expect(dockerfile).to.match(/^ARG SERVICE$/m);
    expect(dockerfile).to.match(/^FROM node:20-slim|^ARG NODE_IMAGE=node:20-slim$/m);
    // Multi-stage: the build stage has the dev dependencies and runs the build; the image gets
    // production dependencies and the service's bundle only, run by plain node as `node`.
    const stages = dockerfile.split(/^FROM /m).slice(1);
    const stage = (name: string): string => stages.find(st => st.split('\n')[0].endsWith(` AS ${name}`)) ?? '';
    expect(stage('build')).to.match(/npm ci --no-audit/);
    expect(stage('build')).to.match(/npm run build/);
    expect(stage('deps')).to.match(/npm ci --omit=dev/);
    const runtime = stages.at(-1)!;
    expect(runtime.split('\n')[0]).to.match(/ AS runtime$/);
    expect(runtime).not.to.match(/npm ci|tsx|COPY \. |\/app\/(libs|services|protos)\b/);
    expect(runtime).to.include('COPY --from=deps /app/node_modules ./node_modules');
    expect(runtime).to.include('COPY --from=build /app/dist/${SERVICE} ./dist/${SERVICE}');
    expect(runtime).to.include(`COPY --from=build /app/dist/${PROBE_LAUNCHER} ./dist/`);
    expect(runtime).to.match(/^USER node$/m);
    expect(runtime).to.include('CMD ["/bin/sh", "-c", "exec node \\"dist/${SERVICE}/main.mjs\\""]');
    // What the image copies is what the build writes.
    expect(BUILD_ENTRIES.map(e => e.out)).to.include.members([...MESH_SERVICES.map(s => `${s}/main.mjs`), 'health-probe/main.mjs']);
    for (const name of appServices) {
      const build = compose.services[name].build;
      expect(build, name).to.deep.include({ context: '.', dockerfile: 'deploy/Dockerfile' });
      expect(build?.args?.['SERVICE'], name).to.equal(name);
      expect(existsSync(join(REPO_ROOT, 'services', name, 'src', 'main.ts')), `services/${name}/src/main.ts`).to.equal(true);
    }
  });

  for (const name of MESH_SERVICES) {
    it(`gives ${name} only variables its code reads, and every one it requires`, async () => {
      const settings = await settingsOf(name);
      const read = new Set(settings.map(s => s.env));
      const given = envOf(compose.services[name] ?? {});
      for (const variable of Object.keys(given)) expect(read.has(variable), `${name} does not read ${variable}`).to.equal(true);
      for (const s of settings.filter(s => !('default' in s))) {
        expect(given, `${name} requires ${s.env}`).to.have.property(s.env);
      }
    });
  }

  it('addresses each service by its compose name on the port it listens on', () => {
    for (const name of appServices) {
      const env = envOf(compose.services[name]);
      for (const [target, endpoint] of Object.entries(MESH_ENDPOINTS)) {
        const port = envOf(compose.services[target])['PORT'];
        expect(env[endpoint.addressEnv], `${name} ${endpoint.addressEnv}`).to.equal(`${target}:${port}`);
      }
      expect(env['NATS_URL'], name).to.equal('tls://nats:4222');
      expect(env['LISTEN_HOST'], name).to.equal('0.0.0.0');
    }
  });

  it('gives the edge and authentication the same issuer', () => {
    const edge = envOf(compose.services['edge'])['AESE_ISSUER'];
    expect(edge).to.be.a('string').and.not.equal('');
    expect(envOf(compose.services['authentication'])['AESE_ISSUER']).to.equal(edge);
  });

  it('publishes no port but the edge T8 port, and the observability UIs on this host only', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      if (name === 'edge') continue;
      for (const port of svc.ports ?? [])
        expect(port, `${name} publishes a port`)
          .to.be.a('string')
          .and.match(/^127\.0\.0\.1:/);
      if (!['jaeger', 'prometheus'].includes(name)) expect(svc.ports ?? [], `${name} publishes a port`).to.deep.equal([]);
    }
    const edgePort = envOf(compose.services['edge'])['PORT'];
    expect(compose.services['edge'].ports).to.deep.equal([`${edgePort}:${edgePort}`]);
  });

  it('mounts each container its own certificate and key read-only, no CA key, and the KEK into crypto only', () => {
    const layout = pkiLayout('/state');
    for (const name of MESH_SERVICES) {
      const svc = compose.services[name];
      expect(envOf(svc)['AESE_STATE_DIR'], name).to.equal(layout.stateDir);
      const mounts = mountsOf(svc);
      const stateMounts = mounts.filter(m => m.source.startsWith('./.state'));
      for (const m of stateMounts) {
        expect(m.readOnly, `${name} mounts ${m.source} writable`).to.equal(true);
        expect(m.source, `${name} mounts a CA key`).not.to.match(/-ca\.key$/);
        expect(m.source, `${name} mounts a whole folder`).to.match(/\.(crt|key)$/);
        // The host path and the container path name the same file of the layout.
        expect(m.target, name).to.equal(m.source.replace(/^\.\/\.state/, layout.stateDir));
      }
      const targets = new Set(stateMounts.map(m => m.target));
      const needed = [layout.meshCa.cert, layout.services[name].cert, layout.services[name].key];
      if (name === 'edge') needed.push(layout.edgeT8.cert, layout.edgeT8.key, layout.edgeNotifier.cert, layout.edgeNotifier.key, layout.asCa.cert);
      expect([...targets], name).to.have.members(needed);
    }
    for (const name of appServices) {
      const secrets = (compose.services[name].secrets ?? []).map(s => (typeof s === 'string' ? s : s.source));
      expect(secrets, name).to.deep.equal(name === 'crypto' ? ['crypto-kek'] : []);
    }
    expect(compose.secrets?.['crypto-kek']?.file).to.equal('./.state/crypto-kek');
    expect(envOf(compose.services['crypto'])['CRYPTO_KEK_FILE']).to.equal('/run/secrets/crypto-kek');
  });

  it('runs every service as a non-root user on a read-only file system without capabilities', () => {
    for (const name of appServices) {
      const svc = compose.services[name];
      expect(svc.user, name).to.be.a('string');
      expect(svc.user!.split(':')[0], name).not.to.match(/^(0|root)$/);
      expect(svc.read_only, name).to.equal(true);
      expect(svc.cap_drop, name).to.deep.equal(['ALL']);
    }
  });

  it('runs NATS from the configuration pki init writes: JetStream, TLS with the mesh CA, certificate identities, no anonymous user, a health check', async () => {
    const nats = compose.services['nats'];
    const command = Array.isArray(nats.command) ? nats.command.join(' ') : (nats.command ?? '');
    const conf = command.match(/(?:-c|--config)\s+(\S+)/)?.[1];
    expect(conf, 'nats command names no config file').to.be.a('string');
    expect(mountsOf(nats)).to.deep.include({ source: './.state/nats/compose.conf', target: conf, readOnly: true });
    // The certificate, key and CA the configuration names are exactly what is mounted.
    expect(mountsOf(nats)).to.deep.include.members([
      { source: './.state/pki/nats-server.crt', target: COMPOSE_NATS_TLS.certFile, readOnly: true },
      { source: './.state/pki/nats-server.key', target: COMPOSE_NATS_TLS.keyFile, readOnly: true },
      { source: './.state/pki/mesh-ca.crt', target: COMPOSE_NATS_TLS.caFile, readOnly: true },
    ]);
    const work = tempDir('aese-compose-nats');
    try {
      await prepareState({ stateDir: work.path, trustDomain: 'scef.local', t8Hostnames: ['localhost', 'edge'] });
      const natsConf = readFileSync(natsStatePaths(work.path).composeConfig, 'utf8');
      expect(natsConf).to.match(/^jetstream \{[^}]*store_dir: "\/data\/jetstream"/m);
      expect(natsConf).to.match(/^tls \{[^}]*verify_and_map: true/m);
      for (const file of Object.values(COMPOSE_NATS_TLS)) expect(natsConf).to.include(`"${file}"`);
      expect(natsConf).to.include('user: "spiffe://scef.local/svc/crypto"');
      expect(natsConf).not.to.match(/no_auth_user|allow_anonymous/);
      // Monitoring (health check) stays inside the container.
      expect(natsConf).to.match(/^http: "127\.0\.0\.1:8222"$/m);
    } finally {
      work.remove();
    }
    expect(nats.healthcheck).to.not.equal(undefined);
  });

  it('keeps the state folder out of image builds', () => {
    const ignore = readFileSync(join(REPO_ROOT, 'deploy', 'Dockerfile.dockerignore'), 'utf8').split('\n');
    expect(ignore).to.include('.state');
    expect(ignore).to.include('**/node_modules');
  });

  it('starts every service from nothing but what compose mounts into its container and its compose environment', async function () {
    this.timeout(120_000);
    const work = tempDir('aese-compose-fs');
    let nats: Awaited<ReturnType<typeof startNatsServer>> | undefined;
    const logs: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        logs.push(chunk.toString('utf8'));
        cb();
      },
    });
    const running: { name: string; stop(): Promise<void> }[] = [];
    try {
      // The host's ./.state, made the way the README says.
      const hostState = join(work.path, 'host-state');
      await prepareState({ stateDir: hostState, trustDomain: 'scef.local', t8Hostnames: ['localhost', 'edge'] });
      // NATS as compose runs it: the same trust model, the same certificates.
      nats = await startNatsServer({ secured: { stateDir: hostState, trustDomain: 'scef.local' } });
      const ports: Record<string, number> = {};
      for (const name of START_ORDER) {
        const svc = compose.services[name];
        // The container's file system: only the mounts and secrets compose gives it.
        const root = join(work.path, 'containers', name);
        const inContainer = (target: string): string => join(root, target);
        for (const m of mountsOf(svc).filter(m => m.source.startsWith('./.state/'))) {
          mkdirSync(dirname(inContainer(m.target)), { recursive: true });
          copyFileSync(join(hostState, m.source.slice('./.state/'.length)), inContainer(m.target));
        }
        for (const secret of svc.secrets ?? []) {
          const source = typeof secret === 'string' ? secret : secret.source;
          const file = compose.secrets?.[source]?.file;
          expect(file, `secret ${source}`).to.match(/^\.\/\.state\//);
          mkdirSync(inContainer('/run/secrets'), { recursive: true });
          copyFileSync(join(hostState, file!.slice('./.state/'.length)), inContainer(`/run/secrets/${source}`));
        }
        const env = Object.fromEntries(Object.entries(envOf(svc)).map(([k, v]) => [k, interpolateDefaults(v)]));
        // Paths move under the container root; addresses and NATS become this test's.
        for (const [k, v] of Object.entries(env)) if (v.startsWith('/')) env[k] = inContainer(v);
        for (const [target, endpoint] of Object.entries(MESH_ENDPOINTS)) {
          env[endpoint.addressEnv] = `localhost:${ports[target] ?? 1}`;
        }
        // Every container has its own metrics port; here they share one host, so metrics are off.
        Object.assign(env, { NATS_URL: nats.url, LISTEN_HOST: '127.0.0.1', PORT: '0', METRICS_PORT: '0' });
        const start = await startFunctionOf(name);
        const started = await start(env, createLogger({ service: name, level: 'warn', destination: sink }));
        running.push({ name, stop: () => started.stop() });
        ports[name] = started.port;
      }
      expect(running.map(r => r.name)).to.deep.equal([...START_ORDER]);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${logs.join('')}`, { cause: err });
    } finally {
      for (const r of running.reverse()) await r.stop();
      await nats?.dispose();
      work.remove();
    }
  });
});
