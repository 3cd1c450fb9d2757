/**
 * Every T8 API the SCEF serves, walked through the real edge by an AS built on independent
 * libraries: one mesh, three ASes and one notification receiver shared by all the journeys listed
 * in test/journeys/index.ts (see test/support/t8-api-journey.ts for what each kind of journey checks).
 */
import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { startEdgeService } from '@aese/edge-service';
import type { MeshClient } from '@aese/grpc-client';
import type { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { SERVED_T8_APIS } from '@aese/t8-catalog';
import { loadT8Schemas } from '@aese/t8-openapi';
import { tempDir } from '@aese/testing';
import { simulatedGroupId } from '../services/capability-exposure/src/network/simulated-core.ts';
import { T8_API_JOURNEYS } from './journeys/index.ts';
import { operatorAuthClient, t8CaPem } from './support/as-client.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { receiverTls } from './support/notification-receiver.ts';
import { categorylessGrants, describeT8ApiJourney, journeyGrants, journeySettings, NotificationInbox } from './support/t8-api-journey.ts';
import type { JourneyContext, JourneyUe } from './support/t8-api-journey.ts';
import { AuditReader, grantAccess, onboardT8As, simulatedUe, T8_ISSUER, T8Client } from './support/t8-client.ts';

/** In the journeys' network (4 UEs, 4 groups) UE i is alone in group i. */
const journeyUe = (i: number): JourneyUe => ({ ...simulatedUe(i), externalGroupId: simulatedGroupId(i) });
const GRANTED_UE = journeyUe(1);
const UNGRANTED_UE = journeyUe(2);
/** The AS that walks the journeys: notification-only APIs deliver to it by the operator's settings. */
const ALPHA = 'as-journey-alpha';

describe('T8 API journeys through the edge', function () {
  this.timeout(20_000);
  const dir = tempDir('aese-journeys');
  let mesh: TestMesh | undefined;
  let operator: MeshClient<AuthenticationServiceClient> | undefined;
  let inbox: NotificationInbox | undefined;
  let context: JourneyContext | undefined;

  before(async function () {
    this.timeout(90_000);
    const tls = await receiverTls(dir.path);
    // The receiver listens first: the settings of notification-only APIs name it.
    inbox = await NotificationInbox.listen({ ...tls, caPem: readFileSync(tls.caFile, 'utf8') });
    mesh = await startTestMesh({
      edge: startEdgeService,
      extraEnv: {
        AESE_ISSUER: T8_ISSUER,
        // A fast tick and a small network: UEs move and QoS guarantees flip within a second or
        // so, without hundreds of events a second nobody subscribed to.
        SIM_TICK_MS: '100',
        SIM_UE_COUNT: '4',
        SIM_GROUP_COUNT: '4',
        NOTIFICATION_DESTINATION_ALLOWLIST: '127.0.0.1/32',
        // The receiver listens on a port the OS picks.
        NOTIFICATION_DESTINATION_PORTS: '1024-65535',
        NOTIFICATION_CA_FILE: tls.caFile,
        ...journeySettings(T8_API_JOURNEYS, ALPHA, inbox),
      },
    });
    inbox.trust(t8CaPem(mesh));
    operator = operatorAuthClient(mesh);
    const scopes = T8_API_JOURNEYS.map(j => j.api);
    const alpha = await onboardT8As(mesh, operator, ALPHA, { scopes });
    const beta = await onboardT8As(mesh, operator, 'as-journey-beta', { scopes });
    const gamma = await onboardT8As(mesh, operator, 'as-journey-gamma', { scopes });
    const grants = journeyGrants(T8_API_JOURNEYS, GRANTED_UE);
    await grantAccess(mesh, { [alpha.scsAsId]: grants, [beta.scsAsId]: grants, [gamma.scsAsId]: categorylessGrants(T8_API_JOURNEYS, GRANTED_UE) });
    context = {
      schemas: await loadT8Schemas(),
      alpha: T8Client.forMesh(mesh, alpha),
      beta: T8Client.forMesh(mesh, beta),
      gamma: T8Client.forMesh(mesh, gamma),
      inbox,
      audit: await AuditReader.open(mesh),
      grantedUe: GRANTED_UE,
      ungrantedUe: UNGRANTED_UE,
    };
  });

  after(async function () {
    this.timeout(30_000);
    await context?.alpha.close();
    await context?.beta.close();
    await context?.gamma.close();
    await context?.audit.close();
    await inbox?.close();
    operator?.close();
    await mesh?.stop();
    dir.remove();
  });

  it('has a journey for every T8 API the SCEF serves, and for nothing else', () => {
    expect(T8_API_JOURNEYS.map(j => j.api)).to.have.members([...SERVED_T8_APIS]);
  });

  const shared = (): JourneyContext => {
    if (!context) throw new Error('the shared mesh did not start');
    return context;
  };
  for (const journey of T8_API_JOURNEYS) describeT8ApiJourney(journey, shared);
});
