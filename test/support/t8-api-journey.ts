/**
 * The journey every T8 API takes through the real edge, as a table: each API describes itself in
 * a {@link T8ApiJourney} (test/journeys/<api>.ts) and {@link describeT8ApiJourney} registers the
 * checks of its kind against one shared mesh. Every call is signed, every answer's signature
 * verifies, bodies are valid against the 3GPP schemas both ways, notifications arrive signed at
 * the AS's own receiver, and the refusals change nothing. Three kinds of API:
 * - `resource` (the default): a collection below `/{scsAsId}`, created, read, listed, replaced,
 *   patched and deleted as the API allows; another AS gets exactly the 404 of an unknown id; a
 *   target the AS was not granted, and an AS not granted the API's data category, get a 403.
 * - `rpc`: custom operations (POST) with no `{scsAsId}` in the path, the caller named in the
 *   body, nothing stored for the AS: a write is seen by the next read, and another AS naming this
 *   one, an ungranted UE and an AS without the category get a 403.
 * - `notification-only`: no routes; the SCEF delivers to the AS the operator configured, and
 *   delivers only what concerns the targets the AS was granted.
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
import type { ApiGrant, AsGrants, AuditReader, RequestSpec, T8Client, T8Reply } from './t8-client.ts';

/** A JSON object body. */
export type JsonBody = Record<string, unknown>;

/** A simulated UE as an AS knows it (see simulatedUe in t8-client.ts), with the external group it is in. */
export interface JourneyUe {
  readonly externalId: string;
  readonly msisdn: string;
  readonly externalGroupId: string;
}

/**
 * What an API's bodies name, and so what its grants list: a UE by externalId or MSISDN (a GPSI
 * or an address counts as the UE's externalId), an external group, or nothing at all (an API about
 * places, applications or UE models, granted by operation and data category alone).
 */
export type JourneyTarget = 'externalId' | 'msisdn' | 'externalGroupId' | 'none';

/** Calls an API as the AS that owns the journey's resource; every answer is checked like the journey's own. */
export interface JourneyCalls {
  /** The path of the journey's resource. */
  readonly itemPath: string;
  call(spec: Omit<RequestSpec, 'token'>): Promise<T8Reply>;
}

/** What every kind of journey says about its API. */
interface JourneyBase {
  /** Base path segment and OAuth scope, e.g. `3gpp-monitoring-event`. */
  readonly api: string;
  readonly version: string;
  readonly schemaFile: T8ApiFile;
  /** The data categories the API's bodies carry: what the ASes are granted. */
  readonly categories: readonly string[];
}

/** An API of resource collections below `/{scsAsId}`. */
export interface T8ResourceJourney extends JourneyBase {
  readonly kind?: 'resource';
  /** The collection below `/{scsAsId}`, e.g. `subscriptions`. */
  readonly collection: string;
  /**
   * What the create body names; grants list UE 1 (or its group) by this kind, so a create for
   * the ungranted UE is refused. `none`: the journey checks the refusal of an AS not granted the
   * API's data category instead (which every journey checks too).
   */
  readonly target: JourneyTarget;
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

/** One custom operation of an RPC-style API: `POST /{api}/{version}{path}`. */
export interface RpcOperation {
  /** E.g. `/query`. */
  readonly path: string;
  /** The body, naming `caller` (the calling AS's scsAsId) where the API wants it, about `ue`. */
  readonly body: (caller: string, ue: JourneyUe) => JsonBody;
}

/**
 * An API of custom operations (POST, no `{scsAsId}` in the path, the caller named in the body,
 * 200 with an answer, no resource of the AS): a read, and a write the next read reflects.
 */
export interface T8RpcJourney extends JourneyBase {
  readonly kind: 'rpc';
  /** How the bodies name the UE. */
  readonly target: 'externalId' | 'msisdn';
  /** The body member naming the caller, which must be the authenticated AS. */
  readonly callerMember: string;
  /** Request and answer schemas of every operation. */
  readonly schemas: { readonly request: string; readonly answer: string };
  readonly read: RpcOperation;
  /** Answers what it wrote; the next read answers the same, which includes `expect`. */
  readonly write: RpcOperation & { readonly expect: JsonBody };
  /** Another write, whose answer would not include `write.expect`: the refused callers send it. */
  readonly otherWrite: RpcOperation;
}

/**
 * An API the AS never calls: the SCEF delivers to the AS the operator configured (a setting read
 * at start-up, so the receiver exists before the mesh), one notification per network event, and
 * only for targets the AS was granted.
 */
export interface T8NotificationOnlyJourney extends JourneyBase {
  readonly kind: 'notification-only';
  /** How the notifications name the UE; grants list UE 1 by this kind. */
  readonly target: 'externalId' | 'msisdn';
  /** The capability-exposure settings that make the SCEF deliver to `destination` for `scsAsId`. */
  readonly settings: (scsAsId: string, destination: string) => Readonly<Record<string, string>>;
  readonly notification: {
    readonly schemaFile?: T8ApiFile;
    readonly schema: string;
    /** The UE a notification is about (by the journey's target kind), or undefined for one that is not this API's. */
    readonly ueOf: (notification: JsonBody) => string | undefined;
    /** What else the granted UE's notification must say (the configured application port, say). */
    readonly expect: JsonBody;
    /** How long the granted UE's first one may take (default 15 s). */
    readonly withinMs?: number;
  };
}

export type T8ApiJourney = T8ResourceJourney | T8RpcJourney | T8NotificationOnlyJourney;

/** The pointer to the schema of a collection's GET 200 answer, for APIs that name it nowhere else. */
export function listSchema(collection: string): string {
  return `#/paths/~1{scsAsId}~1${collection}/get/responses/200/content/application~1json/schema`;
}

/**
 * The grant of one journey's API: every operation, `categories`, and `ue` by the journey's target
 * kind; for `none`, any target (PFDs name applications, which these journeys invent per run).
 */
function journeyGrant(j: T8ApiJourney, ue: JourneyUe, categories: readonly string[]): ApiGrant {
  const targets = j.target === 'none' ? [] : [`${j.target}:${ue[j.target]}`];
  return { operations: [...OPERATIONS], categories: [...categories], targets, anyTarget: j.target === 'none' };
}

/** Grants for every journey's API: every operation, the API's categories, `ue` by the journey's target kind. */
export function journeyGrants(journeys: readonly T8ApiJourney[], ue: JourneyUe): AsGrants {
  return { apis: Object.fromEntries(journeys.map(j => [j.api, journeyGrant(j, ue, j.categories)])) };
}

/** The grants of {@link journeyGrants} without any data category: every request of such an AS is refused. */
export function categorylessGrants(journeys: readonly T8ApiJourney[], ue: JourneyUe): AsGrants {
  return { apis: Object.fromEntries(journeys.map(j => [j.api, journeyGrant(j, ue, [])])) };
}

/** The settings of every notification-only journey, delivering to `scsAsId` at `inbox`. */
export function journeySettings(journeys: readonly T8ApiJourney[], scsAsId: string, inbox: NotificationInbox): Record<string, string> {
  return Object.assign({}, ...journeys.map(j => (j.kind === 'notification-only' ? j.settings(scsAsId, inbox.url(destinationPathOf(j))) : {}))) as Record<string, string>;
}

/** Where a journey's notifications go on the AS's receiver. */
function destinationPathOf(j: T8ApiJourney): string {
  return `/${j.api}/${j.version}/notify`;
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
 * a client certificate and accepting only the SCEF's (T8 CA) once told to {@link trust} it; it
 * records every POST and answers 204. It listens before the mesh starts, so its address can be
 * in the mesh's settings; until then it trusts only its own CA, which signs no client.
 */
export class NotificationInbox {
  private constructor(
    private readonly server: Server,
    private readonly tls: { certPem: string; keyPem: string },
    readonly port: number,
    /** Every notification so far, in arrival order. */
    readonly received: readonly ReceivedNotification[],
  ) {}

  static async listen(tls: { certPem: string; keyPem: string; caPem: string }): Promise<NotificationInbox> {
    const received: ReceivedNotification[] = [];
    const server = createServer({ cert: tls.certPem, key: tls.keyPem, ca: tls.caPem, requestCert: true, rejectUnauthorized: true }, (req, res) => {
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
    return new NotificationInbox(server, tls, (server.address() as AddressInfo).port, received);
  }

  /** From now on accepts clients whose certificates chain to `caPem` (the T8 CA) and no others. */
  trust(caPem: string): void {
    this.server.setSecureContext({ cert: this.tls.certPem, key: this.tls.keyPem, ca: caPem });
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

/** What every journey shares: one mesh, its schemas, three onboarded ASes and alpha's receiver. */
export interface JourneyContext {
  readonly schemas: T8Schemas;
  /** The AS that walks the journeys, granted UE 1 (and its group). */
  readonly alpha: T8Client;
  /** Another AS with the same grants, which must not see alpha's resources. */
  readonly beta: T8Client;
  /** An AS with alpha's grants but for the data categories: granted no data at all. */
  readonly gamma: T8Client;
  readonly inbox: NotificationInbox;
  /** The mesh's audit trail. */
  readonly audit: AuditReader;
  /** UE 1: granted to every AS. */
  readonly grantedUe: JourneyUe;
  /** A UE the network knows and nobody was granted, in a group nobody was granted. */
  readonly ungrantedUe: JourneyUe;
}

const STACK_TRACE = /\n\s+at |Error:|node:internal|\.ts:\d+/;
const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const TARGET_NAMES: Readonly<Record<Exclude<JourneyTarget, 'none'>, string>> = {
  externalId: 'a UE (by externalId)',
  msisdn: 'a UE (by MSISDN)',
  externalGroupId: 'an external group',
};

/** Registers the journey of one API as a mocha `describe`; `context` is read once the shared `before` has run. */
export function describeT8ApiJourney(journey: T8ApiJourney, context: () => JourneyContext): void {
  if (journey.kind === 'rpc') describeRpcJourney(journey, context);
  else if (journey.kind === 'notification-only') describeNotificationOnlyJourney(journey, context);
  else describeResourceJourney(journey, context);
}

/** Signed calls with the API's token and the checks every answer gets. */
function journeyChecks(journey: T8ApiJourney, context: () => JourneyContext) {
  const valid = (file: T8ApiFile, schema: string, body: unknown, direction: 'request' | 'response'): void => {
    const v = context().schemas.validator(file, schema, direction);
    expect(v(body), `${schema} (${direction}): ${JSON.stringify(v.violations())}`).to.equal(true);
  };
  return {
    valid,
    validRequest: (schema: string, body: unknown): void => valid(journey.schemaFile, schema, body, 'request'),
    /** A signed call with the API's token; the answer's signature, caching and any ProblemDetails are checked. */
    call: async (c: T8Client, spec: Omit<RequestSpec, 'token'>): Promise<T8Reply> => {
      const out = await c.call({ ...spec, token: await c.token(journey.api) });
      await c.verifyResponse(out.reply, out.prepared);
      expect(out.reply.headers['cache-control'], `${spec.method} ${spec.path}`).to.equal('no-store');
      if (out.reply.headers['content-type'] === 'application/problem+json') {
        valid('common-data', 'ProblemDetails', out.reply.json(), 'response');
        expect(out.reply.text).not.to.match(STACK_TRACE);
        expect(out.reply.json<JsonBody>()['status']).to.equal(out.reply.status);
      }
      return out.reply;
    },
    /** A JSON answer with this status, valid against this schema of the API's file. */
    json: (reply: T8Reply, status: number, schema: string): JsonBody => {
      expect(reply.status, reply.text).to.equal(status);
      expect(reply.headers['content-type']).to.equal('application/json');
      const body = reply.json<JsonBody>();
      valid(journey.schemaFile, schema, body, 'response');
      return body;
    },
    problem: (reply: T8Reply, status: number): JsonBody => {
      expect(reply.status, reply.text).to.equal(status);
      expect(reply.headers['content-type']).to.equal('application/problem+json');
      return reply.json<JsonBody>();
    },
    /** A refusal names no identifier of the ungranted UE or its group. */
    echoesNothingOf: (reply: T8Reply, ue: JourneyUe): void => {
      for (const id of [ue.externalId, ue.msisdn, ue.externalGroupId]) expect(reply.text).not.to.include(id);
    },
    /** A received notification came from the SCEF, its digest and signature verify, and a changed target URI does not. */
    signedBySCEF: async (received: ReceivedNotification): Promise<void> => {
      expect(received.peerSubject).to.match(/^notifications\./);
      expect(received.headers['content-type']).to.equal('application/json');
      expect(received.headers['content-digest']).to.equal(`sha-256=:${createHash('sha256').update(received.body).digest('base64')}:`);
      expect(await verifyNotificationSignature(context().alpha, received), 'notification signature').to.equal(true);
      expect(await verifyNotificationSignature(context().alpha, { ...received, url: `${received.url}?tampered` }), 'a changed target URI').to.equal(false);
    },
  };
}

/** A schema name for a test title (a pointer into the file says only that it is the callback's). */
const schemaTitle = (schema: string): string => (schema.startsWith('#/') ? 'notification (the callback schema)' : schema);

/**
 * The members the SCEF writes into a resource's sub-resources, set aside: their own `self` links
 * (a PfdData's, a CpParameterSet's), each of which must lie below the resource's.
 */
function withoutNestedSelfLinks(resource: JsonBody): JsonBody {
  const parent = resource['self'];
  const strip = (value: unknown): unknown => {
    if (Array.isArray(value)) return value.map(strip);
    if (value === null || typeof value !== 'object') return value;
    const out: JsonBody = {};
    for (const [k, v] of Object.entries(value)) {
      if (k === 'self')
        expect(v, 'a sub-resource self link')
          .to.be.a('string')
          .that.satisfies((s: string) => s.startsWith(`${String(parent)}/`));
      else out[k] = strip(v);
    }
    return out;
  };
  const { self, ...members } = resource;
  return { ...(strip(members) as JsonBody), ...(self === undefined ? {} : { self }) };
}

function describeResourceJourney(journey: T8ResourceJourney, context: () => JourneyContext): void {
  const { valid, validRequest, call, json, problem, echoesNothingOf, signedBySCEF } = journeyChecks(journey, context);
  const base = `/${journey.api}/${journey.version}`;
  const collectionOf = (c: T8Client): string => `${base}/${c.as.scsAsId}/${journey.collection}`;
  const destinationPath = destinationPathOf(journey);
  /** The methods the API does not have, on the paths where the journey would use them. */
  const missing = (itemPath: string): { method: string; path: string }[] => [
    ...(journey.schemas.list ? [] : [{ method: 'GET', path: collectionOf(context().alpha) }]),
    ...(journey.put ? [] : [{ method: 'PUT', path: itemPath }]),
    ...(journey.patch ? [] : [{ method: 'PATCH', path: itemPath }]),
  ];
  const lacking = [...(journey.schemas.list ? [] : ['GET on the collection']), ...(journey.put ? [] : ['PUT']), ...(journey.patch ? [] : ['PATCH'])];

  /** The `self` links of an AS's collection. */
  const listed = async (c: T8Client): Promise<string[]> => {
    const reply = await call(c, { method: 'GET', path: collectionOf(c) });
    expect(reply.status, reply.text).to.equal(200);
    const items = reply.json<JsonBody[]>();
    valid(journey.schemaFile, journey.schemas.list!, items, 'response');
    return items.map(r => r['self'] as string);
  };
  const destination = (): string => context().inbox.url(destinationPath);

  /** Asserts a create by `c` for `ue` is refused with 403 `cause`: no Location, no identifier of the UE echoed, alpha's and `c`'s collections unchanged. */
  const refusedCreate = async (c: T8Client, ue: JourneyUe, cause: string): Promise<void> => {
    const { alpha } = context();
    const body = journey.create(ue, destination());
    const before = journey.schemas.list ? [await listed(alpha), await listed(c)] : [];
    validRequest(journey.schemas.request, body);
    const reply = await call(c, { method: 'POST', path: collectionOf(c), body });
    expect(problem(reply, 403)).to.include({ cause });
    expect(reply.headers['location']).to.equal(undefined);
    echoesNothingOf(reply, ue);
    if (journey.schemas.list) expect([await listed(alpha), await listed(c)]).to.deep.equal(before);
  };

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
      expect(withoutNestedSelfLinks(created)).to.deep.include(body);
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
        expect(withoutNestedSelfLinks(read)).to.deep.include({ ...body, self });
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
        expect(withoutNestedSelfLinks(read)).to.deep.include({ ...patch.expect, self });
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

    if (journey.target !== 'none') {
      it(`refuses a create naming ${TARGET_NAMES[journey.target]} the AS was not granted (403, nothing created, the target not echoed)`, async () => {
        const { alpha, ungrantedUe } = context();
        await refusedCreate(alpha, ungrantedUe, 'TARGET_NOT_GRANTED');
      });
    }

    it(`refuses a create by an AS not granted the data categories (${journey.categories.join(', ')}) (403, nothing created)`, async () => {
      const { gamma, grantedUe } = context();
      await refusedCreate(gamma, grantedUe, 'CATEGORY_NOT_GRANTED');
    });

    if (journey.notification) {
      const notification = journey.notification;
      it(`notifies alpha's receiver with a signed ${schemaTitle(notification.schema)} from the SCEF`, async () => {
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
        await signedBySCEF(received);
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

function describeRpcJourney(journey: T8RpcJourney, context: () => JourneyContext): void {
  const { validRequest, call, json, problem, echoesNothingOf } = journeyChecks(journey, context);
  const pathOf = (op: RpcOperation): string => `/${journey.api}/${journey.version}${op.path}`;
  /** `c` calls `op` with `body`; the request is checked against the schema first. */
  const send = async (c: T8Client, op: RpcOperation, body: JsonBody): Promise<T8Reply> => {
    validRequest(journey.schemas.request, body);
    return call(c, { method: 'POST', path: pathOf(op), body });
  };
  /** An answer of an operation: 200, schema-valid, nothing created. */
  const answered = (reply: T8Reply): JsonBody => {
    const body = json(reply, 200, journey.schemas.answer);
    expect(reply.headers['location']).to.equal(undefined);
    return body;
  };
  /** What alpha reads about the granted UE now. */
  const alphaReads = async (): Promise<JsonBody> => {
    const { alpha, grantedUe } = context();
    return answered(await send(alpha, journey.read, journey.read.body(alpha.as.scsAsId, grantedUe)));
  };

  describe(`${journey.api} ${journey.version} journey (custom operations)`, () => {
    let written: JsonBody | undefined;

    it(`${journey.read.path} answers 200 with a schema-valid ${journey.schemas.answer}, signed, with no Location`, async () => {
      await alphaReads();
    });

    it(`${journey.write.path} answers 200 with what it wrote, and the next ${journey.read.path} answers the same`, async () => {
      const { alpha, grantedUe } = context();
      written = answered(await send(alpha, journey.write, journey.write.body(alpha.as.scsAsId, grantedUe)));
      expect(written).to.deep.include(journey.write.expect);
      expect(await alphaReads()).to.deep.equal(written);
    });

    it(`answers 405 to GET on ${journey.read.path} and ${journey.write.path}, which are POST only`, async () => {
      const { alpha } = context();
      for (const op of [journey.read, journey.write]) {
        const reply = await call(alpha, { method: 'GET', path: pathOf(op) });
        expect(problem(reply, 405), op.path).to.include({ cause: 'METHOD_NOT_ALLOWED' });
        expect(reply.headers['allow']).to.be.a('string').that.includes('POST');
      }
    });

    it(`another AS naming this AS in ${journey.callerMember} gets a 403 (SCS_AS_ID_MISMATCH), and nothing changes`, async () => {
      const { alpha, beta, grantedUe } = context();
      const before = await alphaReads();
      expect(before).to.deep.include(journey.write.expect);
      for (const op of [journey.read, journey.otherWrite]) {
        const reply = await send(beta, op, op.body(alpha.as.scsAsId, grantedUe));
        expect(problem(reply, 403), op.path).to.include({ cause: 'SCS_AS_ID_MISMATCH' });
        echoesNothingOf(reply, grantedUe);
      }
      expect(await alphaReads()).to.deep.equal(before);
    });

    it(`refuses ${TARGET_NAMES[journey.target]} the AS was not granted (403 for both operations, the UE not echoed)`, async () => {
      const { alpha, ungrantedUe } = context();
      for (const op of [journey.read, journey.otherWrite]) {
        const reply = await send(alpha, op, op.body(alpha.as.scsAsId, ungrantedUe));
        expect(problem(reply, 403), op.path).to.include({ cause: 'TARGET_NOT_GRANTED' });
        echoesNothingOf(reply, ungrantedUe);
      }
    });

    it(`refuses an AS not granted the data categories (${journey.categories.join(', ')}) (403), and nothing changes`, async () => {
      const { gamma, grantedUe } = context();
      const before = await alphaReads();
      for (const op of [journey.read, journey.otherWrite]) {
        const reply = await send(gamma, op, op.body(gamma.as.scsAsId, grantedUe));
        expect(problem(reply, 403), op.path).to.include({ cause: 'CATEGORY_NOT_GRANTED' });
        echoesNothingOf(reply, grantedUe);
      }
      expect(await alphaReads()).to.deep.equal(before);
      expect(before, 'the write step wrote').to.deep.equal(written);
    });
  });
}

function describeNotificationOnlyJourney(journey: T8NotificationOnlyJourney, context: () => JourneyContext): void {
  const { valid, call, problem, signedBySCEF } = journeyChecks(journey, context);
  const { notification } = journey;
  const destinationPath = destinationPathOf(journey);
  /** The notifications of this journey so far, with the UE each is about. */
  const delivered = (): { received: ReceivedNotification; body: JsonBody; ue: string }[] =>
    context().inbox.received.flatMap(received => {
      if (new URL(received.url).pathname !== destinationPath) return [];
      const body = JSON.parse(received.body.toString('utf8')) as JsonBody;
      const ue = notification.ueOf(body);
      return ue === undefined ? [] : [{ received, body, ue }];
    });

  describe(`${journey.api} ${journey.version} journey (notifications only)`, () => {
    it(`delivers the granted UE's ${schemaTitle(notification.schema)} to the AS the operator configured, signed by the SCEF`, async () => {
      const { grantedUe } = context();
      const granted = grantedUe[journey.target];
      const first = await eventuallyValue(() => delivered().find(d => d.ue === granted), notification.withinMs ?? 15_000, `a ${notification.schema} about the granted UE`);
      await signedBySCEF(first.received);
      valid(notification.schemaFile ?? journey.schemaFile, notification.schema, first.body, 'response');
      expect(first.body).to.deep.include(notification.expect);
    });

    it("never delivers another UE's: authorization refuses them (TARGET_NOT_GRANTED, operation notify) and nothing reaches the AS", async () => {
      const { alpha, audit, grantedUe } = context();
      const refused = await audit.waitFor(
        e =>
          e.service === 'authorization' &&
          e.actor === alpha.as.scsAsId &&
          e.reason === 'TARGET_NOT_GRANTED' &&
          e.detail?.['api'] === journey.api &&
          e.detail['operation'] === 'notify',
        1,
        15_000,
      );
      expect(refused, `a refused notify of ${journey.api}`).to.have.length.greaterThan(0);
      expect(delivered().map(d => d.ue)).to.satisfy((ues: string[]) => ues.length > 0 && ues.every(u => u === grantedUe[journey.target]));
    });

    it("opens nothing to the AS: the API's token reaches no resource (404)", async () => {
      const { alpha } = context();
      for (const method of ['GET', 'POST']) {
        const path = `/${journey.api}/${journey.version}/${alpha.as.scsAsId}/${randomUUID()}`;
        const reply = await call(alpha, { method, path, ...(method === 'POST' ? { body: {} } : {}) });
        expect(problem(reply, 404), method).to.include({ cause: 'RESOURCE_NOT_FOUND' });
      }
    });
  });
}
