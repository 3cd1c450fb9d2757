/**
 * The journey every T8 API takes through the real edge, as a table: each API describes itself in
 * a {@link T8ApiJourney} (test/journeys/<api>.ts) and {@link describeT8ApiJourney} registers the
 * same checks for it against one shared mesh. Signed requests, signed responses that verify, bodies
 * valid against the 3GPP schemas both ways, create/read/update/delete as the API allows, a signed
 * notification at the AS's own receiver, and the refusals: another AS gets exactly the 404 of an
 * unknown id, a UE the AS was not granted gets a 403 and creates nothing.
 */
import { expect } from 'chai';
import { createHash, randomUUID } from 'node:crypto';
import { createServer } from 'node:https';
import type { Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { OPERATIONS } from '@aese/t8-catalog';
import { eventuallyValue } from '@aese/testing';
import type { T8ApiFile, T8Schemas } from '@aese/t8-openapi';
import { verifyNotificationSignature } from './notification-receiver.ts';
import { T8_ISSUER } from './t8-client.ts';
import type { AsGrants, RequestSpec, T8Client, T8Reply } from './t8-client.ts';

/** A JSON object body. */
export type JsonBody = Record<string, unknown>;

/** A simulated UE as an AS knows it (see simulatedUe in t8-client.ts). */
export interface JourneyUe {
  readonly externalId: string;
  readonly msisdn: string;
}

/** Calls an API as the AS that owns the journey's resource; every answer is checked like the journey's own. */
export interface JourneyCalls {
  /** The path of the journey's resource. */
  readonly itemPath: string;
  call(spec: Omit<RequestSpec, 'token'>): Promise<T8Reply>;
}

/** One T8 API, as its journey needs it. */
export interface T8ApiJourney {
  /** Base path segment and OAuth scope, e.g. `3gpp-monitoring-event`. */
  readonly api: string;
  readonly version: string;
  readonly schemaFile: T8ApiFile;
  /** The collection below `/{scsAsId}`, e.g. `subscriptions`. */
  readonly collection: string;
  /** The data categories the API's bodies carry: what the ASes are granted. */
  readonly categories: readonly string[];
  /** How the bodies name the UE; grants list UE 1 by this kind, so a body naming another UE is ungranted. */
  readonly target: 'externalId' | 'msisdn';
  /** A create body for `ue`, notifying `notificationDestination`. */
  readonly create: (ue: JourneyUe, notificationDestination: string) => JsonBody;
  /** The status a create answers (default 201, with a Location). */
  readonly createStatus?: number;
  /** Schema names (or `#/paths/...` pointers) in the API file; no `list`: the API has no GET on its collection. */
  readonly schemas: { readonly request: string; readonly resource: string; readonly list?: string };
  /** A full replacement; absent: the API has no PUT. */
  readonly put?: { readonly status: 200 | 204; readonly body: (ue: JourneyUe, notificationDestination: string) => JsonBody };
  /** A partial update; absent: the API has no PATCH. The resource read afterwards includes `expect`. */
  readonly patch?: { readonly contentType: string; readonly schema: string; readonly status: 200 | 204; readonly body: unknown; readonly expect: JsonBody };
  /** The notification the AS receives; absent: the API notifies nothing. */
  readonly notification?: {
    /** The file of the notification schema (default the API's own). */
    readonly schemaFile?: T8ApiFile;
    readonly schema: string;
    /** Makes the SCEF notify (default: nothing to do, the created resource leads to notifications by itself). */
    readonly provoke?: (resource: JsonBody, calls: JourneyCalls) => Promise<void>;
    /** True for the notification the journey waits for (a notification body, the created resource). */
    readonly matches: (notification: JsonBody, resource: JsonBody) => boolean;
    /** How long it may take to come (default 10 s). */
    readonly withinMs?: number;
  };
}

/** The pointer to the schema of a collection's GET 200 answer, for APIs that name it nowhere else. */
export function listSchema(collection: string): string {
  return `#/paths/~1{scsAsId}~1${collection}/get/responses/200/content/application~1json/schema`;
}

/** Grants for every journey's API: every operation, the API's categories, `ue` by the journey's target kind. */
export function journeyGrants(journeys: readonly T8ApiJourney[], ue: JourneyUe): AsGrants {
  return {
    apis: Object.fromEntries(
      journeys.map(j => [j.api, { operations: [...OPERATIONS], categories: [...j.categories], targets: [`${j.target}:${ue[j.target]}`], anyTarget: false }]),
    ),
  };
}

/** A notification as the AS's receiver got it. */
export interface ReceivedNotification {
  readonly url: string;
  readonly headers: Record<string, string | string[]>;
  readonly body: Buffer;
  /** The CN of the client certificate the SCEF presented. */
  readonly peerSubject: string;
}

/**
 * The AS's notification receiver: HTTPS on loopback with its own server certificate, asking for
 * the SCEF's client certificate (trusted by the T8 CA); it records every POST and answers 204.
 */
export class NotificationInbox {
  private constructor(
    private readonly server: Server,
    readonly port: number,
    /** Every notification so far, in arrival order. */
    readonly received: readonly ReceivedNotification[],
  ) {}

  static async listen(tls: { certPem: string; keyPem: string }, t8CaPem: string): Promise<NotificationInbox> {
    const received: ReceivedNotification[] = [];
    const server = createServer({ cert: tls.certPem, key: tls.keyPem, ca: t8CaPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
      const peer = (req.socket as TLSSocket).getPeerCertificate();
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        received.push({
          url: `https://${String(req.headers.host)}${req.url}`,
          headers: req.headers as Record<string, string | string[]>,
          body: Buffer.concat(chunks),
          peerSubject: String(peer.subject?.CN ?? ''),
        });
        res.statusCode = 204;
        res.end();
      });
    });
    await new Promise<void>(r => server.listen(0, '127.0.0.1', r));
    return new NotificationInbox(server, (server.address() as AddressInfo).port, received);
  }

  /** The notificationDestination for a path of this receiver. */
  url(path: string): string {
    return `https://127.0.0.1:${this.port}${path}`;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>(r => this.server.close(() => r()));
  }
}

/** What every journey shares: one mesh, its schemas, two onboarded ASes and alpha's receiver. */
export interface JourneyContext {
  readonly schemas: T8Schemas;
  /** The AS that walks the journeys, granted UE 1. */
  readonly alpha: T8Client;
  /** Another AS with the same grants, which must not see alpha's resources. */
  readonly beta: T8Client;
  readonly inbox: NotificationInbox;
  /** UE 1: granted to both ASes. */
  readonly grantedUe: JourneyUe;
  /** A UE the network knows and nobody was granted. */
  readonly ungrantedUe: JourneyUe;
}

const STACK_TRACE = /\n\s+at |Error:|node:internal|\.ts:\d+/;
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';

/** Registers the journey of one API as a mocha `describe`; `context` is read once the shared `before` has run. */
export function describeT8ApiJourney(journey: T8ApiJourney, context: () => JourneyContext): void {
  const base = `/${journey.api}/${journey.version}`;
  const collectionOf = (c: T8Client): string => `${base}/${c.as.scsAsId}/${journey.collection}`;
  const destinationPath = `/${journey.api}/${journey.version}/notify`;
  /** The methods the API does not have, on the paths where the journey would use them. */
  const missing = (itemPath: string): { method: string; path: string }[] => [
    ...(journey.schemas.list ? [] : [{ method: 'GET', path: collectionOf(context().alpha) }]),
    ...(journey.put ? [] : [{ method: 'PUT', path: itemPath }]),
    ...(journey.patch ? [] : [{ method: 'PATCH', path: itemPath }]),
  ];
  const lacking = [...(journey.schemas.list ? [] : ['GET on the collection']), ...(journey.put ? [] : ['PUT']), ...(journey.patch ? [] : ['PATCH'])];

  /** A signed call with the API's token; the answer's signature, caching and any ProblemDetails are checked. */
  const call = async (c: T8Client, spec: Omit<RequestSpec, 'token'>): Promise<T8Reply> => {
    const out = await c.call({ ...spec, token: await c.token(journey.api) });
    await c.verifyResponse(out.reply, out.prepared);
    expect(out.reply.headers['cache-control'], `${spec.method} ${spec.path}`).to.equal('no-store');
    if (out.reply.headers['content-type'] === 'application/problem+json') {
      valid('common-data', 'ProblemDetails', out.reply.json(), 'response');
      expect(out.reply.text).not.to.match(STACK_TRACE);
      expect(out.reply.json<JsonBody>()['status']).to.equal(out.reply.status);
    }
    return out.reply;
  };
  const valid = (file: T8ApiFile, schema: string, body: unknown, direction: 'request' | 'response'): void => {
    const v = context().schemas.validator(file, schema, direction);
    expect(v(body), `${schema} (${direction}): ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  const validRequest = (schema: string, body: unknown): void => valid(journey.schemaFile, schema, body, 'request');
  const json = (reply: T8Reply, status: number, schema: string): JsonBody => {
    expect(reply.status, reply.text).to.equal(status);
    expect(reply.headers['content-type']).to.equal('application/json');
    const body = reply.json<JsonBody>();
    valid(journey.schemaFile, schema, body, 'response');
    return body;
  };
  const problem = (reply: T8Reply, status: number): JsonBody => {
    expect(reply.status, reply.text).to.equal(status);
    expect(reply.headers['content-type']).to.equal('application/problem+json');
    return reply.json<JsonBody>();
  };
  /** The `self` links of an AS's collection. */
  const listed = async (c: T8Client): Promise<string[]> => {
    const reply = await call(c, { method: 'GET', path: collectionOf(c) });
    expect(reply.status, reply.text).to.equal(200);
    const items = reply.json<JsonBody[]>();
    valid(journey.schemaFile, journey.schemas.list!, items, 'response');
    return items.map(r => r['self'] as string);
  };
  const destination = (): string => context().inbox.url(destinationPath);

  describe(`${journey.api} ${journey.version} journey`, () => {
    let made: { created: JsonBody; readonly self: string; readonly itemPath: string } | undefined;
    /** The resource the create step made: the later steps walk it, and stop at once without one. */
    const resource = (): NonNullable<typeof made> => {
      if (!made) throw new Error('no resource: the create step failed');
      return made;
    };

    it(`creates a resource (${journey.createStatus ?? 201}); request and answer fit the 3GPP schemas, Location and self agree`, async () => {
      const { alpha, grantedUe } = context();
      const body = journey.create(grantedUe, destination());
      validRequest(journey.schemas.request, body);
      const reply = await call(alpha, { method: 'POST', path: collectionOf(alpha), body });
      const created = json(reply, journey.createStatus ?? 201, journey.schemas.resource);
      const self = created['self'] as string;
      expect(self).to.match(new RegExp(`^${T8_ISSUER}${collectionOf(alpha)}/${UUID}$`));
      if ((journey.createStatus ?? 201) === 201) expect(reply.headers['location']).to.equal(self);
      expect(created).to.deep.include(body);
      made = { created, self, itemPath: new URL(self).pathname };
    });

    it('reads it back unchanged' + (journey.schemas.list ? ' and lists it' : ''), async () => {
      const { alpha } = context();
      const { created, self, itemPath } = resource();
      expect(json(await call(alpha, { method: 'GET', path: itemPath }), 200, journey.schemas.resource)).to.deep.equal(created);
      if (journey.schemas.list) expect(await listed(alpha)).to.include(self);
    });

    if (journey.put) {
      const put = journey.put;
      it(`replaces it with PUT (${put.status}); the replacement is what it reads afterwards`, async () => {
        const { alpha, grantedUe } = context();
        const { self, itemPath } = resource();
        const body = put.body(grantedUe, destination());
        validRequest(journey.schemas.request, body);
        const reply = await call(alpha, { method: 'PUT', path: itemPath, body });
        const answer = put.status === 200 ? json(reply, 200, journey.schemas.resource) : undefined;
        if (put.status === 204) expect([reply.status, reply.body.length], reply.text).to.deep.equal([204, 0]);
        const read = json(await call(alpha, { method: 'GET', path: itemPath }), 200, journey.schemas.resource);
        expect(read).to.deep.include({ ...body, self });
        if (answer) expect(answer).to.deep.equal(read);
        resource().created = read;
      });
    }

    if (journey.patch) {
      const patch = journey.patch;
      it(`updates it with PATCH (${patch.contentType}, ${patch.status}); the change is what it reads afterwards`, async () => {
        const { alpha } = context();
        const { created, self, itemPath } = resource();
        validRequest(patch.schema, patch.body);
        const reply = await call(alpha, { method: 'PATCH', path: itemPath, body: patch.body, contentType: patch.contentType });
        const answer = patch.status === 200 ? json(reply, 200, journey.schemas.resource) : undefined;
        if (patch.status === 204) expect([reply.status, reply.body.length], reply.text).to.deep.equal([204, 0]);
        const read = json(await call(alpha, { method: 'GET', path: itemPath }), 200, journey.schemas.resource);
        expect(read).to.deep.include({ ...patch.expect, self });
        expect(read).not.to.deep.equal(created);
        if (answer) expect(answer).to.deep.equal(read);
        resource().created = read;
      });
    }

    if (lacking.length > 0) {
      it(`answers 405 to ${lacking.join(' and ')}, which the API does not have`, async () => {
        const { alpha } = context();
        for (const { method, path } of missing(resource().itemPath)) {
          const reply = await call(alpha, { method, path });
          expect(problem(reply, 405), method).to.include({ cause: 'METHOD_NOT_ALLOWED' });
          expect(reply.headers['allow']).to.be.a('string').that.does.not.include(method);
        }
      });
    }

    it('another AS reading, updating or deleting it gets exactly the 404 of an unknown id, and nothing changes', async () => {
      const { alpha, beta, grantedUe } = context();
      const { self, itemPath } = resource();
      const before = await call(alpha, { method: 'GET', path: itemPath });
      expect(before.status).to.equal(200);
      const foreign = `${collectionOf(beta)}/${itemPath.split('/').pop()!}`;
      const unknown = `${collectionOf(beta)}/${randomUUID()}`;
      const attempts: Omit<RequestSpec, 'token' | 'path'>[] = [
        { method: 'GET' },
        ...(journey.put ? [{ method: 'PUT', body: journey.put.body(grantedUe, destination()) }] : []),
        ...(journey.patch ? [{ method: 'PATCH', body: journey.patch.body, contentType: journey.patch.contentType }] : []),
        { method: 'DELETE' },
      ];
      for (const attempt of attempts) {
        const theirs = await call(beta, { ...attempt, path: foreign });
        const nobodys = await call(beta, { ...attempt, path: unknown });
        expect(problem(theirs, 404), attempt.method).to.include({ cause: 'RESOURCE_NOT_FOUND' });
        expect(theirs.body.equals(nobodys.body), `${attempt.method}: ${theirs.text} / ${nobodys.text}`).to.equal(true);
        expect(theirs.headers['content-type']).to.equal(nobodys.headers['content-type']);
      }
      // Alpha's own path with beta's identity is refused before anything is looked up.
      expect(problem(await call(beta, { method: 'GET', path: itemPath }), 403)).to.include({ cause: 'SCS_AS_ID_MISMATCH' });
      const after = await call(alpha, { method: 'GET', path: itemPath });
      expect(after.status).to.equal(200);
      expect(after.body.equals(before.body), 'alpha reads it unchanged').to.equal(true);
      if (journey.schemas.list) expect(await listed(beta)).not.to.include(self);
    });

    it('refuses a create naming a UE the AS was not granted (403, nothing created, the UE not echoed)', async () => {
      const { alpha, ungrantedUe } = context();
      const before = journey.schemas.list ? await listed(alpha) : [];
      const body = journey.create(ungrantedUe, destination());
      validRequest(journey.schemas.request, body);
      const reply = await call(alpha, { method: 'POST', path: collectionOf(alpha), body });
      expect(problem(reply, 403)).to.include({ cause: 'TARGET_NOT_GRANTED' });
      expect(reply.headers['location']).to.equal(undefined);
      expect(reply.text).not.to.include(ungrantedUe.externalId);
      expect(reply.text).not.to.include(ungrantedUe.msisdn);
      if (journey.schemas.list) expect(await listed(alpha)).to.deep.equal(before);
    });

    if (journey.notification) {
      const notification = journey.notification;
      it(`notifies alpha's receiver with a signed ${notification.schema} from the SCEF`, async () => {
        const { alpha, inbox } = context();
        const { created, itemPath } = resource();
        await notification.provoke?.(created, { itemPath, call: spec => call(alpha, spec) });
        const ours = (r: ReceivedNotification): JsonBody | undefined => {
          if (new URL(r.url).pathname !== destinationPath || r.headers['content-type'] !== 'application/json') return undefined;
          const body = JSON.parse(r.body.toString('utf8')) as JsonBody;
          return notification.matches(body, created) ? body : undefined;
        };
        const withinMs = notification.withinMs ?? 10_000;
        const received = await eventuallyValue(() => inbox.received.find(r => ours(r) !== undefined), withinMs, `a ${notification.schema} for ${journey.api}`);
        expect(received.peerSubject).to.match(/^notifications\./);
        expect(received.headers['content-digest']).to.equal(`sha-256=:${createHash('sha256').update(received.body).digest('base64')}:`);
        expect(await verifyNotificationSignature(alpha, received), 'notification signature').to.equal(true);
        expect(await verifyNotificationSignature(alpha, { ...received, url: `${received.url}?tampered` }), 'a changed target URI').to.equal(false);
        valid(notification.schemaFile ?? journey.schemaFile, notification.schema, ours(received), 'response');
      });
    }

    it('deletes it (204); afterwards it is 404 to read and to delete again' + (journey.schemas.list ? ', and no longer listed' : ''), async () => {
      const { alpha } = context();
      const { self, itemPath } = resource();
      const removed = await call(alpha, { method: 'DELETE', path: itemPath });
      expect([removed.status, removed.body.length], removed.text).to.deep.equal([204, 0]);
      expect(problem(await call(alpha, { method: 'GET', path: itemPath }), 404)).to.include({ cause: 'RESOURCE_NOT_FOUND' });
      expect(problem(await call(alpha, { method: 'DELETE', path: itemPath }), 404)).to.include({ cause: 'RESOURCE_NOT_FOUND' });
      if (journey.schemas.list) expect(await listed(alpha)).not.to.include(self);
    });
  });
}
