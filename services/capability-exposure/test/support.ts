import { expect } from 'chai';
import type { T8ApiFile, T8Schemas } from '@aese/t8-openapi';
import { SERVED_T8_APIS } from '@aese/t8-catalog';
import { Writable } from 'node:stream';
import type { NatsConnection, Subscription } from 'nats';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { connectNatsAs } from '@aese/testing';
import { createLogger } from '@aese/logger';
import type { Logger } from '@aese/logger';
import { CapabilityExposureServiceClient } from '@aese/protos/capability-exposure/v1';
import type { InvokeResponse } from '@aese/protos/capability-exposure/v1';
import { NotificationRequested, SignedEvent } from '@aese/protos/events/v1';
import { NOTIFICATION_EVENT_TYPE } from '@aese/events';
import type { TestMesh } from '../../../test/support/mesh.ts';
import type { Decide, Decision, DecisionRequest, Obligation } from '../src/domain/decision.ts';
import type { HostResolver } from '../src/domain/notification-destination.ts';
import { BUILTIN_MODULES } from '../src/modules/index.ts';
import type { ApiModule, ModuleServices } from '../src/modules/registry.ts';
import { startCapabilityExposureService } from '../src/server.ts';
import type { RunningCapabilityExposure } from '../src/server.ts';

export const API_ROOT = 'https://scef.test.example';
export const AS_DESTINATION = 'https://as1.example.com/notify';
const PUBLIC_ADDRESS = '203.0.114.10';

/** Public DNS stand-in: the example names resolve to a public address, others fail. */
export const testResolver: HostResolver = async host => {
  if (host.endsWith('.example.com')) return [{ address: PUBLIC_ADDRESS, family: 4 }];
  throw new Error('ENOTFOUND');
};

/**
 * The built-in modules over the given network, store, schemas and decision point, with the test
 * resolver for destinations, real clocks and ids, and no test notifications.
 */
export function builtinModules(services: Pick<ModuleServices, 'network' | 'store' | 'schemas' | 'decide'>): ApiModule[] {
  return BUILTIN_MODULES.map(d =>
    d.create({
      ...services,
      destinations: { allow: [], meshEndpoints: [], resolve: testResolver },
      now: Date.now,
      newId: () => crypto.randomUUID(),
      sendTestNotification: async () => {},
    }),
  );
}

/** A grant of the test policy: targets and categories an AS may use, and obligations it gets. */
export interface TestGrant {
  readonly targets: readonly string[];
  /** Every target (the grant's `anyTarget`). */
  readonly anyTarget?: boolean;
  readonly categories: readonly string[];
  readonly obligations?: readonly Obligation[];
}

/**
 * The policy the tests decide with until the authorization service is wired in: deny by default,
 * allow an AS its granted targets and categories, and record every question asked.
 */
export class TestPolicy {
  readonly asked: DecisionRequest[] = [];
  readonly grants = new Map<string, TestGrant>();
  down = false;

  readonly decide: Decide = async req => {
    this.asked.push(req);
    if (this.down) throw new Error('authorization unreachable');
    return this.evaluate(req);
  };

  evaluate(req: DecisionRequest): Decision {
    const g = this.grants.get(req.scsAsId);
    const deny = (cause: string): Decision => ({ allowed: false, obligations: [], policyVersion: 7, denyCause: cause });
    if (!g || req.pathScsAsId !== req.scsAsId) return deny('NO_GRANT');
    if (!req.dataCategories.every(c => g.categories.includes(c))) return deny('CATEGORY_NOT_GRANTED');
    if (!g.anyTarget && !req.targets.every(t => g.targets.includes(t))) return deny('TARGET_NOT_GRANTED');
    return { allowed: true, obligations: g.obligations ?? [], policyVersion: 7, denyCause: '' };
  }
}

/** Log lines captured from a test instance. */
export function captureLogger(lines: string[], service = 'capability-exposure'): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(
        ...chunk
          .toString('utf8')
          .split('\n')
          .filter(l => l.length > 0),
      );
      cb();
    },
  });
  return createLogger({ service, level: 'debug', destination: sink });
}

/**
 * Starts an instance of the service on the mesh's NATS and PKI, with the automatic tick off and a
 * network of its own (not a replica of the mesh's: its events are decided by its own `decide`).
 */
export async function startInstance(mesh: TestMesh, logs: string[], decide: Decide | undefined, extraEnv: Record<string, string> = {}): Promise<RunningCapabilityExposure> {
  const svc = await startCapabilityExposureService({ ...mesh.env, PORT: '0', SIM_TICK_MS: '0', NETWORK_EVENTS: 'in-process', ...extraEnv }, captureLogger(logs), {
    ...(decide ? { decide } : {}),
    resolveHost: testResolver,
  });
  // It listens before its state (subscriptions, modules) is loaded; tests start from a serving one.
  await svc.whenReady;
  return svc;
}

/** The edge's view of the service: Invoke over mTLS with the edge identity. */
export function edgeClient(mesh: TestMesh, port: number): MeshClient<CapabilityExposureServiceClient> {
  return createMeshClient(CapabilityExposureServiceClient, { address: `localhost:${port}`, tls: mesh.tls('edge'), serverId: mesh.id('capability-exposure') });
}

export interface T8Call {
  readonly scsAsId?: string;
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
  /** Raw body text, for bodies JSON.stringify cannot produce (duplicate keys). */
  readonly raw?: string;
  readonly contentType?: string;
  readonly scopes?: readonly string[];
}

export interface T8Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly text: string;
  readonly json: unknown;
  readonly res: InvokeResponse;
}

/**
 * Assertions against one API file's schemas: `valid` checks a body (ProblemDetails against the
 * common data file), `problem` a ProblemDetails answer with its status, cause and, when given,
 * the first invalid parameter. `schemas` is read at each call (tests load them in `before`).
 */
export function t8Assertions(schemas: () => T8Schemas, file: T8ApiFile) {
  const valid = (schema: string, body: unknown, direction: 'request' | 'response' = 'response'): void => {
    const v = schemas().validator(schema === 'ProblemDetails' ? 'common-data' : file, schema, direction);
    expect(v(body), `${schema}: ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const problem = (a: T8Answer, status: number, cause: string, param?: string): Record<string, unknown> => {
    expect(a.status, a.text).to.equal(status);
    expect(a.headers['content-type']).to.equal('application/problem+json');
    valid('ProblemDetails', a.json);
    expect(a.json).to.include({ status, cause });
    if (param !== undefined) expect((a.json as { invalidParams: { param: string }[] }).invalidParams[0].param).to.equal(param);
    return a.json as Record<string, unknown>;
  };
  return { valid, problem };
}

/** Every response body seen, for the leak scan at the end. */
export const seenBodies: string[] = [];

export async function t8(client: MeshClient<CapabilityExposureServiceClient>, call: T8Call): Promise<T8Answer> {
  const raw = call.raw ?? (call.body === undefined ? '' : JSON.stringify(call.body));
  const res = await client.invoke({
    scsAsId: call.scsAsId ?? 'as1',
    method: call.method,
    path: call.path,
    contentType: call.contentType ?? (raw === '' ? '' : 'application/json'),
    body: Buffer.from(raw),
    scopes: [...(call.scopes ?? SERVED_T8_APIS)],
    apiRoot: API_ROOT,
  });
  const text = Buffer.from(res.body).toString('utf8');
  seenBodies.push(text);
  return { status: res.status, headers: res.headers, text, json: text === '' ? undefined : JSON.parse(text), res };
}

/** Collects NotificationRequested messages published for one AS. */
export class NotificationWatcher {
  readonly received: NotificationRequested[] = [];
  private constructor(
    private readonly nc: NatsConnection,
    readonly subscription: Subscription,
  ) {}

  /** Watches as the JetStream administrator: no service may subscribe to another's subjects. */
  static async open(natsUrl: string, stateDir: string, scsAsId: string): Promise<NotificationWatcher> {
    const nc = await connectNatsAs(natsUrl, stateDir, 'nats-admin');
    const sub = nc.subscribe(`aese.notifications.v1.${scsAsId}`);
    const w = new NotificationWatcher(nc, sub);
    void (async () => {
      for await (const m of sub) {
        // Requests travel in a signed envelope (the edge verifies it; test/control-plane-events.test.ts).
        const envelope = SignedEvent.decode(m.data);
        if (envelope.type !== NOTIFICATION_EVENT_TYPE || envelope.signature.length === 0) throw new Error(`unsigned notification request on ${m.subject}`);
        const n = NotificationRequested.decode(envelope.payload);
        w.received.push(n);
        seenBodies.push(Buffer.from(n.body).toString('utf8'));
      }
    })();
    await nc.flush();
    return w;
  }

  for(subscriptionId: string): NotificationRequested[] {
    return this.received.filter(n => n.subscriptionId === subscriptionId);
  }

  /** Waits until a matching notification arrived, advancing the network between looks. */
  async waitFor(predicate: (n: NotificationRequested) => boolean, advance: () => Promise<void>, maxSteps = 60): Promise<NotificationRequested> {
    for (let i = 0; i < maxSteps; i++) {
      await this.nc.flush();
      await new Promise(r => setTimeout(r, 5));
      const hit = this.received.find(predicate);
      if (hit) return hit;
      await advance();
    }
    throw new Error('no matching notification');
  }

  async settle(): Promise<void> {
    await this.nc.flush();
    await new Promise(r => setTimeout(r, 50));
  }

  async close(): Promise<void> {
    await this.nc.drain();
  }
}
