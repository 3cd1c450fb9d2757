import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import type { ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { expect } from 'chai';
import { parse, parseAllDocuments } from 'yaml';
import { CLUSTER_NODES } from '@aese/cli';
import { MESH_SERVICES } from '@aese/pki';
import { REPO_ROOT } from '@aese/runtime';
import { allowListPairs, meshCallsOf } from './support/deploy.js';

/**
 * There is no cluster where the tests run, so deploy/k8s is checked against the Kubernetes API
 * schemas (test/schemas/kubernetes, strict: unknown fields are refused) and against the code: one
 * Deployment and Service per service, the images and settings compose runs, the health probe,
 * least privilege, NetworkPolicies that allow exactly the calls the services make, a three-node
 * NATS with JetStream replicas 3, and no key material in the manifests.
 */

const K8S = join(REPO_ROOT, 'deploy', 'k8s');

interface Meta {
  readonly name: string;
  readonly labels?: Record<string, string>;
}
interface Env {
  readonly name: string;
  readonly value?: string;
}
interface Container {
  readonly name: string;
  readonly image: string;
  readonly args?: string[];
  readonly env?: Env[];
  readonly ports?: { containerPort: number; name?: string }[];
  readonly readinessProbe?: { exec?: { command: string[] } };
  readonly livenessProbe?: { exec?: { command: string[] } };
  readonly startupProbe?: { exec?: { command: string[] } };
  readonly resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  readonly securityContext?: {
    allowPrivilegeEscalation?: boolean;
    readOnlyRootFilesystem?: boolean;
    runAsNonRoot?: boolean;
    capabilities?: { drop?: string[] };
  };
  readonly volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}
interface PodSpec {
  readonly securityContext?: { runAsNonRoot?: boolean; runAsUser?: number; seccompProfile?: { type: string } };
  readonly containers: Container[];
  readonly volumes?: { name: string; secret?: { secretName: string; items?: { key: string; path: string }[] }; configMap?: { name: string } }[];
}
interface Peer {
  readonly podSelector?: { matchLabels?: Record<string, string> };
  readonly namespaceSelector?: unknown;
  readonly ipBlock?: unknown;
}
interface Rule {
  readonly from?: Peer[];
  readonly to?: Peer[];
  readonly ports?: { port: number }[];
}
interface Doc {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: Meta;
  readonly spec: {
    replicas?: number;
    template?: { spec: PodSpec };
    ports?: { port: number; targetPort: number }[];
    selector?: Record<string, unknown>;
    podSelector?: { matchLabels?: Record<string, string> };
    policyTypes?: string[];
    ingress?: Rule[];
    egress?: Rule[];
    scaleTargetRef?: { kind: string; name: string };
    minReplicas?: number;
    maxReplicas?: number;
    serviceName?: string;
  };
}

const kustomization = parse(readFileSync(join(K8S, 'kustomization.yaml'), 'utf8')) as { resources: string[]; namespace: string };
const docs: { file: string; doc: Doc }[] = kustomization.resources.flatMap(file =>
  parseAllDocuments(readFileSync(join(K8S, file), 'utf8')).map(d => ({ file, doc: d.toJS() as Doc })),
);
const compose = parse(readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
  services: Record<string, { image: string; environment: Record<string, string>; healthcheck: { test: string[] } }>;
};

const of = (kind: string): Doc[] => docs.filter(d => d.doc.kind === kind).map(d => d.doc);
const named = (kind: string, name: string): Doc => {
  const found = of(kind).find(d => d.metadata.name === name);
  expect(found, `${kind} ${name}`).to.not.equal(undefined);
  return found!;
};
const containerOf = (kind: string, name: string): Container => named(kind, name).spec.template!.spec.containers[0];
const envMap = (c: Container): Record<string, string> => Object.fromEntries((c.env ?? []).map(e => [e.name, e.value ?? '']));
/** Compose's `${VAR:-default}` with nothing set: the default. */
const composeEnv = (name: string): Record<string, string> =>
  Object.fromEntries(Object.entries(compose.services[name].environment).map(([k, v]) => [k, String(v).replace(/\$\{[A-Z0-9_]+:-([^}]*)\}/g, '$1')]));

/** The services scaled by a HorizontalPodAutoscaler: every one but crypto (README, "Deploy on Kubernetes"). */
const SCALED = MESH_SERVICES.filter(s => s !== 'crypto');

function schemaFor(kind: string): ValidateFunction {
  const files: Record<string, string> = {
    Deployment: 'deployment',
    StatefulSet: 'statefulset',
    Service: 'service',
    ConfigMap: 'configmap',
    NetworkPolicy: 'networkpolicy',
    HorizontalPodAutoscaler: 'horizontalpodautoscaler-autoscaling-v2',
  };
  expect(files, `a schema for ${kind}`).to.have.property(kind);
  const ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
  (addFormats as unknown as { default: (a: Ajv) => Ajv }).default(ajv);
  return ajv.compile(JSON.parse(readFileSync(join(REPO_ROOT, 'test', 'schemas', 'kubernetes', `${files[kind]}.json`), 'utf8')) as object);
}

describe('deployment: the Kubernetes manifests (deploy/k8s)', () => {
  it('lists every manifest in the kustomization, and sets the namespace', () => {
    const files = readdirSync(K8S).filter(f => f.endsWith('.yaml') && f !== 'kustomization.yaml');
    expect([...kustomization.resources].sort()).to.deep.equal(files.sort());
    expect(kustomization.namespace).to.equal('aese');
  });

  it('is valid against the Kubernetes API schemas, which refuse an unknown field', () => {
    const validators = new Map<string, ValidateFunction>();
    for (const { file, doc } of docs) {
      if (!validators.has(doc.kind)) validators.set(doc.kind, schemaFor(doc.kind));
      const validate = validators.get(doc.kind)!;
      expect(validate(doc), `${file}: ${doc.kind} ${doc.metadata.name}: ${JSON.stringify(validate.errors)}`).to.equal(true);
    }
    // Negative control: a misspelt probe field, in a Deployment that validates as written.
    const broken = structuredClone(named('Deployment', 'crypto')) as unknown as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } };
    broken.spec.template.spec.containers[0]['readinesProbe'] = broken.spec.template.spec.containers[0]['readinessProbe'];
    expect(validators.get('Deployment')!(broken)).to.equal(false);
  });

  it('keeps key material out of the manifests: no Secret objects, only Secret volumes', () => {
    expect(docs.map(d => d.doc.kind)).not.to.include('Secret');
    const text = kustomization.resources.map(f => readFileSync(join(K8S, f), 'utf8')).join('\n');
    expect(text).not.to.match(/BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)/);
  });

  for (const name of MESH_SERVICES) {
    it(`runs ${name} as compose does: its image, its settings, its port, its PKI`, () => {
      const c = containerOf('Deployment', name);
      expect(c.image, name).to.equal(compose.services[name].image);
      // Only NATS differs: a three-node cluster, streams with three replicas. Traces go to the
      // platform's collector when OTEL_EXPORTER_OTLP_ENDPOINT is added by an overlay.
      const expected = { ...composeEnv(name), NATS_REPLICAS: '3' };
      delete (expected as Record<string, string>)['OTEL_EXPORTER_OTLP_ENDPOINT'];
      expect(envMap(c)).to.deep.equal(expected);
      const port = Number(envMap(c)['PORT']);
      expect(c.ports?.map(p => p.containerPort)).to.have.members([port, Number(envMap(c)['METRICS_PORT'])]);
      expect(named('Service', name).spec.ports).to.deep.include.members([{ ...named('Service', name).spec.ports![0], port, targetPort: port }]);
      expect(named('Service', name).spec.ports).to.have.length(1);
      // The PKI files land where compose mounts them (under AESE_STATE_DIR=/state), from Secrets.
      const pki = named('Deployment', name).spec.template!.spec.volumes!.find(v => v.name === 'pki')!;
      expect(pki.secret!.secretName).to.equal(`aese-${name}-pki`);
      expect(pki.secret!.items!.map(i => i.path)).to.include.members(['pki/mesh-ca.crt', `pki/services/${name}.crt`, `pki/services/${name}.key`]);
      expect(c.volumeMounts).to.deep.include({ name: 'pki', mountPath: '/state', readOnly: true });
    });
  }

  it('probes each service with the health probe compose uses: gRPC health over mTLS with its own certificate', () => {
    for (const name of MESH_SERVICES) {
      const c = containerOf('Deployment', name);
      const command = compose.services[name].healthcheck.test.slice(1);
      expect(command).to.deep.equal(['node', 'dist/health-probe.mjs', name]);
      for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) expect(probe?.exec?.command, name).to.deep.equal(command);
    }
  });

  it('runs every pod non-root, read-only, without capabilities, under seccomp, with resource requests and limits', () => {
    for (const d of [...of('Deployment'), ...of('StatefulSet')]) {
      const pod = d.spec.template!.spec;
      expect(pod.securityContext?.runAsNonRoot, d.metadata.name).to.equal(true);
      expect(pod.securityContext?.runAsUser, d.metadata.name).to.be.greaterThan(0);
      expect(pod.securityContext?.seccompProfile?.type, d.metadata.name).to.equal('RuntimeDefault');
      for (const c of pod.containers) {
        expect(c.securityContext, c.name).to.deep.include({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true });
        expect(c.securityContext?.capabilities?.drop, c.name).to.deep.equal(['ALL']);
        expect(c.resources?.requests, c.name).to.have.all.keys('cpu', 'memory');
        expect(c.resources?.limits, c.name).to.have.all.keys('cpu', 'memory');
      }
    }
  });

  it('denies all traffic by default, then allows exactly the calls the services make, all within the allow-lists', () => {
    const deny = named('NetworkPolicy', 'default-deny');
    expect(deny.spec.podSelector).to.deep.equal({});
    expect(deny.spec.policyTypes).to.have.members(['Ingress', 'Egress']);
    expect(deny.spec.ingress ?? [], 'default-deny allows no ingress').to.deep.equal([]);
    expect(deny.spec.egress ?? [], 'default-deny allows no egress').to.deep.equal([]);

    const port = (name: string): number => Number(envMap(containerOf('Deployment', name))['PORT']);
    const nameOf = (p: Peer): string | undefined => p.podSelector?.matchLabels?.['app.kubernetes.io/name'];
    const calls = new Set(MESH_SERVICES.flatMap(caller => meshCallsOf(caller).map(callee => `${caller} -> ${callee}`)));
    const ingress = new Set<string>();
    const egress = new Set<string>();
    for (const np of of('NetworkPolicy')) {
      const self = np.spec.podSelector?.matchLabels?.['app.kubernetes.io/name'];
      if (!self || !(MESH_SERVICES as readonly string[]).includes(self)) continue;
      for (const rule of np.spec.ingress ?? []) {
        for (const peer of rule.from ?? []) {
          const from = nameOf(peer);
          if (!from) continue;
          expect(
            rule.ports?.map(p => p.port),
            `${from} -> ${self}`,
          ).to.deep.equal([port(self)]);
          ingress.add(`${from} -> ${self}`);
        }
      }
      for (const rule of np.spec.egress ?? []) {
        for (const peer of rule.to ?? []) {
          const to = nameOf(peer);
          if (!to || to === 'nats') continue;
          expect(
            rule.ports?.map(p => p.port),
            `${self} -> ${to}`,
          ).to.deep.equal([port(to)]);
          egress.add(`${self} -> ${to}`);
        }
      }
    }
    expect([...ingress].sort()).to.deep.equal([...calls].sort());
    expect([...egress].sort()).to.deep.equal([...calls].sort());
    const allowed = allowListPairs();
    for (const call of calls) expect(allowed.has(call), `${call} is in docs/architecture.md's allow-lists`).to.equal(true);
    // Positive control: the allow-lists were read (the edge may call replay-guard).
    expect(allowed.has('edge -> replay-guard')).to.equal(true);

    // Every service reaches NATS; only the edge takes traffic from outside the mesh.
    const natsPolicy = named('NetworkPolicy', 'nats');
    const natsClients = (natsPolicy.spec.ingress ?? []).filter(r => r.ports?.[0]?.port === 4222).flatMap(r => (r.from ?? []).map(nameOf));
    expect(natsClients).to.have.members([...MESH_SERVICES]);
    const open = of('NetworkPolicy').filter(np => (np.spec.ingress ?? []).some(r => r.from === undefined));
    expect(open.map(np => np.metadata.name)).to.deep.equal(['edge']);
    expect(named('NetworkPolicy', 'edge').spec.ingress!.find(r => r.from === undefined)!.ports).to.deep.equal([{ protocol: 'TCP', port: port('edge') }]);
  });

  it('runs NATS as three nodes from the configurations pki init writes, with JetStream replicas 3 in every service', () => {
    const nats = named('StatefulSet', 'nats');
    expect(nats.spec.replicas).to.equal(CLUSTER_NODES.length);
    const c = nats.spec.template!.spec.containers[0];
    expect(c.args).to.deep.equal(['-c', '/etc/nats/config/$(POD_NAME).conf']);
    expect(nats.spec.template!.spec.volumes!.find(v => v.name === 'config')?.configMap?.name).to.equal('nats-config');
    // The routes in each node's configuration name nats-<n>: each is a Service of its own.
    for (const node of CLUSTER_NODES) expect(named('Service', node).spec.selector).to.deep.include({ 'statefulset.kubernetes.io/pod-name': node });
    expect(named('Service', 'nats-cluster').spec).to.include({ clusterIP: 'None' });
    for (const name of MESH_SERVICES) {
      const env = envMap(containerOf('Deployment', name));
      expect(env['NATS_REPLICAS'], name).to.equal('3');
      expect(env['NATS_URL'], name).to.equal('tls://nats:4222');
    }
  });

  it('scales the stateless services horizontally, and keeps one crypto', () => {
    const hpas = of('HorizontalPodAutoscaler');
    expect(hpas.map(h => h.spec.scaleTargetRef!.name)).to.have.members([...SCALED]);
    for (const h of hpas) {
      expect(h.spec.scaleTargetRef!.kind).to.equal('Deployment');
      expect(h.spec.minReplicas).to.be.at.least(2);
      expect(h.spec.maxReplicas).to.be.greaterThan(h.spec.minReplicas!);
    }
    expect(named('Deployment', 'crypto').spec.replicas).to.equal(1);
  });
});
