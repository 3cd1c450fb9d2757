import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import type { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { AuthorizationServiceClient } from '@aese/protos/authorization/v1';
import { CapabilityExposureServiceClient } from '@aese/protos/capability-exposure/v1';
import { REPO_ROOT } from '@aese/runtime';
import { SERVED_T8_APIS, T8_APIS, T8_SCOPES } from '@aese/t8-catalog';
import { tempDir } from '@aese/testing';
import { BUILTIN_MODULES } from '../services/capability-exposure/src/modules/index.ts';
import { simulatedImsi } from '../services/capability-exposure/src/network/simulated-core.ts';
import { aese, expectOneLineError } from './support/cli.ts';
import { startTestMesh } from './support/mesh.ts';
import type { TestMesh } from './support/mesh.ts';
import { onboardAs } from './support/onboarding.ts';

interface Listed {
  ues: { externalId: string; msisdn: string; ipv4Addr: string; ipv6Addr: string; groups: string[] }[];
  groups: { externalGroupId: string; memberCount: number }[];
}

const errorOf = (p: Promise<unknown>): Promise<AeseError | undefined> =>
  p.then(
    () => undefined,
    (e: unknown) => e as AeseError,
  );

describe('aese policy grant / withdraw, network list, served scopes (CLI binary against a running mesh)', function () {
  this.timeout(90_000);
  let mesh: TestMesh;
  let out: ReturnType<typeof tempDir>;
  let env: Record<string, string>;
  let decider: MeshClient<AuthorizationServiceClient>;

  const version = async (): Promise<number> => {
    const res = await aese(['policy', 'show', '--json'], env);
    expect(res.code, res.stderr).to.equal(0);
    return (JSON.parse(res.stdout) as { version: number }).version;
  };
  const network = async (): Promise<Listed> => {
    const res = await aese(['network', 'list', '--json'], env);
    expect(res.code, res.stderr).to.equal(0);
    return JSON.parse(res.stdout) as Listed;
  };
  const decide = (scsAsId: string, targets: string[], categories = ['location']) =>
    decider.decide({ scsAsId, api: '3gpp-monitoring-event', operation: 'read', dataCategories: categories, targets, pathScsAsId: scsAsId });

  before(async () => {
    mesh = await startTestMesh();
    out = tempDir('aese-cli-grants');
    env = {
      AESE_STATE_DIR: mesh.stateDir,
      AESE_TRUST_DOMAIN: mesh.trustDomain,
      AUTHENTICATION_ADDR: mesh.env['AUTHENTICATION_ADDR'],
      AUTHORIZATION_ADDR: mesh.env['AUTHORIZATION_ADDR'],
      CAPABILITY_EXPOSURE_ADDR: mesh.env['CAPABILITY_EXPOSURE_ADDR'],
      AESE_EDGE_URL: 'https://scef.example.test:9443',
    };
    decider = createMeshClient(AuthorizationServiceClient, {
      address: mesh.env['AUTHORIZATION_ADDR'],
      tls: mesh.tls('capability-exposure'),
      serverId: mesh.id('authorization'),
    });
  });
  after(async () => {
    decider?.close();
    out?.remove();
    await mesh?.stop();
  });

  describe('served APIs', () => {
    it("are capability-exposure's modules, live and in code, and nothing else is a scope", async () => {
      const modules = BUILTIN_MODULES.map(m => m.name).sort();
      expect([...SERVED_T8_APIS].sort()).to.deep.equal(modules);
      expect([...T8_SCOPES].sort()).to.deep.equal(modules);
      const ce = createMeshClient(CapabilityExposureServiceClient, {
        address: mesh.env['CAPABILITY_EXPOSURE_ADDR'],
        tls: mesh.tls('operator'),
        serverId: mesh.id('capability-exposure'),
      });
      try {
        expect((await ce.listApis({})).apis.map(a => a.scope).sort()).to.deep.equal(modules);
      } finally {
        ce.close();
      }
      // Every T8 API of TS 29.122 is served.
      expect([...T8_APIS].sort()).to.deep.equal(modules);
    });

    it('the authentication service refuses to register an unserved scope, and accepts a served one', async () => {
      const admin = createMeshClient(AuthenticationServiceClient, {
        address: mesh.env['AUTHENTICATION_ADDR'],
        tls: mesh.tls('operator'),
        serverId: mesh.id('authentication'),
      });
      try {
        const reg = (scopes: string[]) =>
          admin.registerApplicationServer({
            scsAsId: 'scope-as',
            certificateThumbprints: ['A'.repeat(43)],
            scopes,
            signingKeysJson: [],
            encryptionKeyJson: '',
            signatureProfile: 0,
          });
        const err = await errorOf(reg(['3gpp-unknown-api']));
        expect(err?.code).to.equal('INVALID_INPUT');
        expect(err?.message).to.include(`scope 3gpp-unknown-api is not a T8 API this SCEF serves (served: ${T8_SCOPES.join(', ')})`);
        expect((await admin.listApplicationServers({})).applicationServers.map(a => a.scsAsId)).not.to.include('scope-as');
        expect((await reg(['3gpp-as-session-with-qos'])).applicationServer?.scopes).to.deep.equal(['3gpp-as-session-with-qos']);
      } finally {
        admin.close();
      }
    });

    it('the token endpoint answers an unserved scope with invalid_scope, a served one with a token', async () => {
      const as = await onboardAs(mesh, 'token-scope-as', ['3gpp-monitoring-event']);
      const edge = createMeshClient(AuthenticationServiceClient, { address: mesh.env['AUTHENTICATION_ADDR'], tls: mesh.tls('edge'), serverId: mesh.id('authentication') });
      try {
        const issue = (scope: string) => edge.issueToken({ certificateDer: as.der, grantType: 'client_credentials', clientId: 'token-scope-as', scope });
        const err = await errorOf(issue('3gpp-unknown-api'));
        expect(err?.code).to.equal('INVALID_SCOPE');
        expect(err?.message).to.match(/not a served T8 API/);
        expect((await issue('3gpp-monitoring-event')).scope).to.equal('3gpp-monitoring-event');
      } finally {
        edge.close();
      }
    });
  });

  describe('network list', () => {
    it('lists the simulated UEs and groups as capability-exposure has them, never an IMSI', async () => {
      const listed = await network();
      expect(listed.ues).to.have.length(100);
      expect(listed.groups.map(g => g.externalGroupId)).to.deep.equal(['group1@scef.test', 'group2@scef.test', 'group3@scef.test', 'group4@scef.test']);
      expect(listed.groups.reduce((n, g) => n + g.memberCount, 0)).to.equal(100);
      expect(listed.ues[0]).to.deep.equal({ externalId: 'ue1@scef.test', msisdn: '33610000001', ipv4Addr: '10.45.0.1', ipv6Addr: '2001:db8:45::1', groups: ['group1@scef.test'] });
      const table = await aese(['network', 'list'], env);
      expect(table.code, table.stderr).to.equal(0);
      expect(table.stdout).to.match(/^100 UEs\nEXTERNAL_ID\s+MSISDN\s+IPV4\s+IPV6\s+GROUPS\n/);
      expect(table.stdout).to.match(/^ue7@scef\.test\s+33610000007\s+10\.45\.0\.7\s+2001:db8:45::7\s+group3@scef\.test$/m);
      for (let i = 1; i <= 100; i++) expect(table.stdout + JSON.stringify(listed)).not.to.include(simulatedImsi(i));
    });

    it('ListNetworkIdentities is for the operator only', async () => {
      for (const identity of ['edge', 'authorization', 'authentication'] as const) {
        const client = createMeshClient(CapabilityExposureServiceClient, {
          address: mesh.env['CAPABILITY_EXPOSURE_ADDR'],
          tls: mesh.tls(identity),
          serverId: mesh.id('capability-exposure'),
        });
        try {
          expect((await errorOf(client.listNetworkIdentities({})))?.code, identity).to.equal('CALLER_NOT_ALLOWED');
        } finally {
          client.close();
        }
      }
    });

    it('the shipped example grants name UEs and groups the simulated network has', async () => {
      const listed = await network();
      const known = new Set([...listed.ues.flatMap(u => [`externalId:${u.externalId}`, `msisdn:${u.msisdn}`]), ...listed.groups.map(g => `externalGroupId:${g.externalGroupId}`)]);
      const grants = JSON.parse(readFileSync(join(REPO_ROOT, 'services', 'authorization', 'policies', 'example-grants.json'), 'utf8')) as {
        tags?: Record<string, { targets: string[] }>;
      }[];
      const targets = grants.flatMap(e => Object.values(e.tags ?? {}).flatMap(g => g.targets));
      expect(targets).to.have.length.greaterThan(0);
      expect(targets.filter(t => !known.has(t))).to.deep.equal([]);
    });
  });

  describe('granting an onboarded AS', () => {
    it("onboarding says there is no grant yet and gives the command, with the API's categories", async () => {
      const res = await aese(['as', 'onboard', 'grant-as', '--scope', '3gpp-monitoring-event', '--out', join(out.path, 'grant-as')], env);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.include('grant-as has no grant yet: every T8 request it makes is refused');
      expect(res.stdout).to.include(
        'aese policy grant grant-as --api 3gpp-monitoring-event --category location --category reachability --category connectivity --category roaming --target <kind:value>... (or --any-target)',
      );
      expect((await decide('grant-as', ['externalId:ue1@scef.test'])).allowed).to.equal(false);
    });

    it('grants one API with targets and obligations; the decision follows; onboarding then shows it', async () => {
      const before = await version();
      const res = await aese(
        [
          'policy',
          'grant',
          'grant-as',
          '--api',
          '3gpp-monitoring-event',
          '--category',
          'location',
          '--target',
          'externalId:ue1@scef.test',
          '--target',
          'externalGroupId:group2@scef.test',
          '--encrypt',
          'location',
          '--location-granularity',
          'ta',
          '--rate-limit',
          '7',
        ],
        env,
      );
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.include(`granted 3gpp-monitoring-event to grant-as: policy version ${before + 1} (was ${before})`);
      expect(res.stdout).to.include('rate limit of grant-as: 7 requests/s over all its APIs');
      expect(res.stdout).to.match(/^grant-as\s+3gpp-monitoring-event\s+create,read,update,delete,notify\s+location\s+2\s+encrypt:location location:ta rate:7\/s$/m);
      expect(res.stdout).not.to.match(/note:/);
      const allowed = await decide('grant-as', ['externalId:ue1@scef.test']);
      expect(allowed.allowed).to.equal(true);
      expect(
        allowed.obligations
          .map(o => `${o.type}:${JSON.stringify(o.parameters)}`)
          .sort()
          .join(' '),
      ).to.match(/coarsen-location.*"ta".*encrypt-response.*rate-limit/);
      expect((await decide('grant-as', ['externalId:ue2@scef.test'])).denyCause).to.equal('TARGET_NOT_GRANTED');
      expect((await decide('grant-as', ['externalId:ue1@scef.test'], ['roaming'])).denyCause).to.equal('CATEGORY_NOT_GRANTED');

      const again = await aese(['as', 'onboard', 'grant-as', '--scope', '3gpp-monitoring-event', '--out', join(out.path, 'grant-as-2')], env);
      expect(again.code, again.stderr).to.equal(0);
      expect(again.stdout).to.match(/granted \(authorization policy in force\):\nSCS_AS_ID\s+API/);
      expect(again.stdout).not.to.include('has no grant');
    });

    it('refuses a change based on an older version, and changes nothing', async () => {
      const current = await version();
      const res = await aese(
        ['policy', 'grant', 'grant-as', '--api', '3gpp-monitoring-event', '--category', 'location', '--any-target', '--expected-version', String(current - 1)],
        env,
      );
      expectOneLineError(res, 1, /FAILED_PRECONDITION/);
      expect(await version()).to.equal(current);
      expect((await decide('grant-as', ['externalId:ue3@scef.test'])).allowed).to.equal(false);
    });

    it('refuses a category the API does not have, naming its categories', async () => {
      const current = await version();
      const res = await aese(['policy', 'grant', 'grant-as', '--api', '3gpp-monitoring-event', '--category', 'qos', '--any-target'], env);
      expectOneLineError(res, 2, /3gpp-monitoring-event has no data category qos; its categories: location, reachability, connectivity, roaming/);
      expect(await version()).to.equal(current);
    });

    it('says when the AS is not registered for the API it was granted', async () => {
      const res = await aese(
        ['policy', 'grant', 'grant-as', '--api', '3gpp-as-session-with-qos', '--category', 'qos', '--target', 'msisdn:33610000005', '--operation', 'create', '--operation', 'read'],
        env,
      );
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.match(/^grant-as\s+3gpp-as-session-with-qos\s+create,read\s+qos\s+1\s/m);
      expect(res.stdout).to.include('note: grant-as is registered for 3gpp-monitoring-event, not 3gpp-as-session-with-qos');
    });

    it('withdraws one API, then all, and refuses to withdraw what is not granted', async () => {
      const one = await aese(['policy', 'withdraw', 'grant-as', '--api', '3gpp-as-session-with-qos'], env);
      expect(one.code, one.stderr).to.equal(0);
      expect(one.stdout).to.match(/^withdrew 3gpp-as-session-with-qos from grant-as: policy version \d+/);
      expect(one.stdout).to.match(/^grant-as\s+3gpp-monitoring-event\s/m);
      expect(one.stdout).not.to.match(/^grant-as\s+3gpp-as-session-with-qos/m);
      const current = await version();
      expectOneLineError(
        await aese(['policy', 'withdraw', 'grant-as', '--api', '3gpp-as-session-with-qos'], env),
        1,
        /grant-as has no grant for 3gpp-as-session-with-qos; nothing changed \(NOT_FOUND\)/,
      );
      expect(await version()).to.equal(current);
      const all = await aese(['policy', 'withdraw', 'grant-as'], env);
      expect(all.code, all.stderr).to.equal(0);
      expect(all.stdout).to.include('grant-as has no grant: every T8 request it makes is refused');
      expect((await decide('grant-as', ['externalId:ue1@scef.test'])).allowed).to.equal(false);
    });
  });

  describe('a revoked scsAsId', () => {
    it('is refused at onboarding (CLI and registry): no bundle, no registry change', async () => {
      const first = await aese(['as', 'onboard', 'revoked-as', '--scope', '3gpp-monitoring-event', '--out', join(out.path, 'revoked-1')], env);
      expect(first.code, first.stderr).to.equal(0);
      expect((await aese(['as', 'revoke', 'revoked-as'], env)).code).to.equal(0);
      const listBefore = (await aese(['as', 'list', '--json'], env)).stdout;

      const dir = join(out.path, 'revoked-2');
      const res = await aese(['as', 'onboard', 'revoked-as', '--scope', '3gpp-monitoring-event', '--out', dir], env);
      expectOneLineError(res, 1, /SCS\/AS revoked-as is revoked and a revocation is permanent \(it cannot be lifted\): onboard the AS under a new scsAsId \(FAILED_PRECONDITION\)/);
      expect(res.stdout).to.equal('');
      expect(existsSync(dir)).to.equal(false);
      expect((await aese(['as', 'list', '--json'], env)).stdout).to.equal(listBefore);

      // Positive control: another scsAsId onboards.
      const other = await aese(['as', 'onboard', 'not-revoked-as', '--scope', '3gpp-monitoring-event', '--out', join(out.path, 'not-revoked')], env);
      expect(other.code, other.stderr).to.equal(0);
    });
  });
});
