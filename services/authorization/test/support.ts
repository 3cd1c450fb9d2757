import { expect } from 'chai';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import type { DecideRequest } from '@aese/protos/authorization/v1';
import type { MeshServiceName } from '@aese/runtime';
import { eventually as pollUntil } from '@aese/testing';
import type { TestMesh } from '../../../test/support/mesh.ts';

/** UE and group identifiers of the tests: distinctive, so a log scan finds any leak. */
export const UE = {
  a: 'externalId:ue-a-7f3kq@a.example',
  aMsisdn: 'msisdn:491710000123',
  aGroup: 'externalGroupId:fleet-a-9qz@a.example',
  b: 'externalId:ue-b-2m8xw@b.example',
  stranger: 'externalId:ue-x-5v1pt@x.example',
  strangerMsisdn: 'msisdn:491719999876',
  strangerGroup: 'externalGroupId:fleet-x-4hd@x.example',
} as const;

/** Identifier values alone (without the kind), as they would appear in a leaked log line. */
export const UE_VALUES = Object.values(UE).map(t => t.slice(t.indexOf(':') + 1));

/** One API grant in Cedar entity JSON (the value of an Application tag). */
export interface GrantJson {
  operations: string[];
  categories: string[];
  targets: string[];
  anyTarget: boolean;
  encryptCategories?: string[];
  locationGranularity?: string;
}

/** A grants-file entity (Cedar entity JSON). */
export interface GrantEntity {
  uid: { type: string; id: string };
  attrs: Record<string, unknown>;
  parents: { type: string; id: string }[];
  tags?: Record<string, GrantJson>;
}

/** Grants of the tests: as-a watches location of its fleet, as-b has QoS for any UE. */
export const TEST_GRANTS: GrantEntity[] = [
  {
    uid: { type: 'Aese::ApplicationGroup', id: 'partners' },
    attrs: {},
    parents: [],
  },
  {
    uid: { type: 'Aese::Application', id: 'as-a' },
    attrs: { rateLimitPerSecond: 50 },
    parents: [{ type: 'Aese::ApplicationGroup', id: 'partners' }],
    tags: {
      '3gpp-monitoring-event': {
        operations: ['create', 'read', 'delete', 'notify'],
        categories: ['location', 'reachability'],
        targets: [UE.a, UE.aMsisdn, UE.aGroup],
        anyTarget: false,
        encryptCategories: ['location'],
        locationGranularity: 'cell',
      },
    },
  },
  {
    uid: { type: 'Aese::Application', id: 'as-b' },
    attrs: {},
    parents: [],
    tags: {
      '3gpp-as-session-with-qos': {
        operations: ['create', 'read', 'update', 'delete'],
        categories: ['qos'],
        targets: [],
        anyTarget: true,
      },
      '3gpp-monitoring-event': {
        operations: ['create'],
        categories: ['location'],
        targets: [UE.b],
        anyTarget: false,
        locationGranularity: 'ta',
      },
    },
  },
  {
    uid: { type: 'Aese::Application', id: 'as-exact' },
    attrs: {},
    parents: [],
    tags: {
      '3gpp-monitoring-event': {
        operations: ['read'],
        categories: ['location'],
        targets: [UE.a],
        anyTarget: false,
        locationGranularity: 'exact',
      },
    },
  },
];

export type AuthorizationClient = MeshClient<AuthorizationServiceClient>;

/** A client of the authorization service under a mesh identity. */
export function authorizationClient(mesh: TestMesh, identity: MeshServiceName | 'operator', address = mesh.env['AUTHORIZATION_ADDR']): AuthorizationClient {
  return createMeshClient(AuthorizationServiceClient, { address, tls: mesh.tls(identity), serverId: mesh.id('authorization') });
}

/** as-a creating a location subscription for its own UE: the positive control of most tests. */
export function request(overrides: Partial<DecideRequest> = {}): DecideRequest {
  return {
    scsAsId: 'as-a',
    api: '3gpp-monitoring-event',
    operation: 'create',
    dataCategories: ['location'],
    targets: [UE.a],
    pathScsAsId: 'as-a',
    ...overrides,
  };
}

/** The AeseError a call failed with; fails the test if it succeeded. */
export async function failure(call: Promise<unknown>): Promise<AeseError> {
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'the call succeeded').to.be.instanceOf(AeseError);
  return err as AeseError;
}

/** Polls until `check` holds or `timeoutMs` passes (then fails with `what`). */
export function eventually(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 5_000): Promise<void> {
  return pollUntil(check, timeoutMs, what);
}
