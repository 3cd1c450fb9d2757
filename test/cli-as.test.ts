import { createPrivateKey, X509Certificate } from 'node:crypto';
import { cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { status as GrpcStatus } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import { certificateThumbprint, pemToDer, pkiLayout } from '@aese/pki';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { tempDir } from '@aese/testing';
import { aese, expectOneLineError } from './support/cli.ts';
import type { CliResult } from './support/cli.ts';
import { startTestMesh } from './support/mesh.js';
import type { TestMesh } from './support/mesh.js';

const mode = (path: string): number => statSync(path).mode & 0o777;

interface ListedAs {
  scsAsId: string;
  status: string;
  signatureProfile: string;
  scopes: string[];
  certificateThumbprints: string[];
  signingKeys: Record<string, unknown>[];
  encryptionKey: Record<string, unknown> | null;
}

describe('aese as (CLI binary against a running mesh)', function () {
  this.timeout(60_000);
  let mesh: TestMesh;
  let out: ReturnType<typeof tempDir>;
  let env: Record<string, string>;

  const list = async (): Promise<ListedAs[]> => {
    const res = await aese(['as', 'list', '--json'], env);
    expect(res.code, res.stderr).to.equal(0);
    return JSON.parse(res.stdout) as ListedAs[];
  };

  before(async () => {
    mesh = await startTestMesh();
    out = tempDir('aese-cli-out');
    env = {
      AESE_STATE_DIR: mesh.stateDir,
      AESE_TRUST_DOMAIN: mesh.trustDomain,
      AUTHENTICATION_ADDR: mesh.env['AUTHENTICATION_ADDR'],
      AUTHORIZATION_ADDR: mesh.env['AUTHORIZATION_ADDR'],
      AESE_EDGE_URL: 'https://scef.example.test:9443',
    };
  });
  after(async () => {
    out?.remove();
    await mesh?.stop();
  });

  describe('onboard', () => {
    const bundle = (): string => join(out.path, 'as-1');
    let onboarded: CliResult;
    before(async () => {
      onboarded = await aese(['as', 'onboard', 'as-1', '--scope', '3gpp-monitoring-event', '--scope', '3gpp-as-session-with-qos', '--out', bundle()], env);
    });

    it('writes the six bundle files, private ones 0600 in a 0700 folder', () => {
      expect(onboarded.code, onboarded.stderr).to.equal(0);
      expect(onboarded.stderr).to.equal('');
      expect(readdirSync(bundle()).sort()).to.deep.equal(['as.json', 'ca.crt', 'client.crt', 'client.key', 'encryption.jwk', 'signing.jwk'].sort());
      expect(mode(bundle())).to.equal(0o700);
      for (const f of ['client.key', 'signing.jwk', 'encryption.jwk']) expect(mode(join(bundle(), f)), f).to.equal(0o600);
      for (const f of ['client.crt', 'ca.crt', 'as.json']) expect(mode(join(bundle(), f)), f).to.equal(0o644);
      expect(onboarded.stdout).to.include('curl --cert');
    });

    it('issues an AS CA certificate for spiffe://<td>/as/<scsAsId> and hands out the T8 server CA', () => {
      const layout = pkiLayout(mesh.stateDir);
      const cert = new X509Certificate(readFileSync(join(bundle(), 'client.crt')));
      expect(cert.subjectAltName).to.equal(`URI:spiffe://${mesh.trustDomain}/as/as-1`);
      expect(cert.verify(new X509Certificate(readFileSync(layout.asCa.cert)).publicKey)).to.equal(true);
      expect(cert.checkPrivateKey(createPrivateKey(readFileSync(join(bundle(), 'client.key'), 'utf8')))).to.equal(true);
      expect(readFileSync(join(bundle(), 'ca.crt'), 'utf8')).to.equal(readFileSync(layout.t8Ca.cert, 'utf8'));
    });

    it('registers the certificate thumbprint, the scopes and the public keys only', async () => {
      const thumbprint = certificateThumbprint(pemToDer(readFileSync(join(bundle(), 'client.crt'), 'utf8')));
      const as = (await list()).find(a => a.scsAsId === 'as-1');
      expect(as).to.not.equal(undefined);
      expect(as!.certificateThumbprints).to.deep.equal([thumbprint]);
      expect(as!.scopes).to.have.members(['3gpp-monitoring-event', '3gpp-as-session-with-qos']);
      expect(as!.status).to.equal('active');
      expect(as!.signatureProfile).to.equal('required');

      const signing = JSON.parse(readFileSync(join(bundle(), 'signing.jwk'), 'utf8')) as Record<string, string>;
      expect(signing).to.include({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
      expect(signing['d']).to.be.a('string').and.not.equal('');
      expect(as!.signingKeys).to.have.length(1);
      expect(as!.signingKeys[0]).to.not.have.property('d');
      expect(as!.signingKeys[0]).to.include({ kid: signing['kid'], x: signing['x'], y: signing['y'] });

      const encryption = JSON.parse(readFileSync(join(bundle(), 'encryption.jwk'), 'utf8')) as Record<string, string>;
      expect(encryption).to.include({ kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW', use: 'enc' });
      expect(encryption['d']).to.be.a('string').and.not.equal('');
      expect(as!.encryptionKey).to.not.have.property('d');
      expect(as!.encryptionKey).to.include({ kid: encryption['kid'], x: encryption['x'] });

      const asJson = JSON.parse(readFileSync(join(bundle(), 'as.json'), 'utf8')) as Record<string, unknown>;
      expect(asJson).to.deep.include({
        scsAsId: 'as-1',
        edgeUrl: 'https://scef.example.test:9443',
        tokenEndpoint: 'https://scef.example.test:9443/oauth2/token',
        certificateThumbprint: thumbprint,
        signingKeyId: signing['kid'],
        encryptionKeyId: encryption['kid'],
      });
      expect(asJson['scopes']).to.have.members(['3gpp-monitoring-event', '3gpp-as-session-with-qos']);
    });

    it('lists the AS as a table too', async () => {
      const res = await aese(['as', 'list'], env);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout.split('\n')[0]).to.match(/^SCS_AS_ID\s+STATUS\s+SIGNATURES\s+SCOPES/);
      expect(res.stdout).to.match(/^as-1\s+active\s+required\s+3gpp-monitoring-event,3gpp-as-session-with-qos\s+1\s/m);
    });

    it('never overwrites an existing bundle', async () => {
      const before = readFileSync(join(bundle(), 'client.key'), 'utf8');
      const res = await aese(['as', 'onboard', 'as-1', '--scope', '3gpp-as-session-with-qos', '--out', bundle()], env);
      expectOneLineError(res, 2, /as\.json exists|client\.crt exists/);
      expect(readFileSync(join(bundle(), 'client.key'), 'utf8')).to.equal(before);
    });

    it('suspends an AS: its status flips to suspended', async () => {
      const res = await aese(['as', 'suspend', 'as-1'], env);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.match(/suspended as-1/);
      expect((await list()).find(a => a.scsAsId === 'as-1')?.status).to.equal('suspended');
    });

    it('re-onboarding replaces the certificate and keys, says so, and keeps the status', async () => {
      const oldThumbprint = certificateThumbprint(pemToDer(readFileSync(join(bundle(), 'client.crt'), 'utf8')));
      const again = join(out.path, 'as-1-again');
      const res = await aese(['as', 'onboard', 'as-1', '--scope', '3gpp-as-session-with-qos', '--out', again], env);
      expect(res.code, res.stderr).to.equal(0);
      expect(res.stdout).to.match(/^re-onboarded \(previous certificate and keys replaced\) as-1 \(status suspended;/);
      const newThumbprint = certificateThumbprint(pemToDer(readFileSync(join(again, 'client.crt'), 'utf8')));
      const as = (await list()).find(a => a.scsAsId === 'as-1')!;
      expect(as.certificateThumbprints).to.deep.equal([newThumbprint]);
      expect(as.certificateThumbprints).not.to.include(oldThumbprint);
      expect(as.scopes).to.deep.equal(['3gpp-as-session-with-qos']);
      expect(as.status).to.equal('suspended');
    });
  });

  it('registers the optional signature profile when asked', async () => {
    const res = await aese(['as', 'onboard', 'legacy-as', '--scope', '3gpp-as-session-with-qos', '--out', join(out.path, 'legacy'), '--signature-profile', 'optional'], env);
    expect(res.code, res.stderr).to.equal(0);
    expect((await list()).find(a => a.scsAsId === 'legacy-as')?.signatureProfile).to.equal('optional');
  });

  it('refuses an unknown scope with one line, registers nothing and writes nothing', async () => {
    const dir = join(out.path, 'unknown-scope');
    const res = await aese(['as', 'onboard', 'as-2', '--scope', '3gpp-as-session-with-qos', '--scope', '3gpp-teleportation', '--out', dir], env);
    expectOneLineError(res, 2, /unknown scope "3gpp-teleportation"/);
    expect(existsSync(dir)).to.equal(false);
    expect((await list()).map(a => a.scsAsId)).not.to.include('as-2');
  });

  it('refuses a malformed scsAsId with one line before anything is issued', async () => {
    const dir = join(out.path, 'bad-id');
    const res = await aese(['as', 'onboard', 'as/../../x', '--scope', '3gpp-as-session-with-qos', '--out', dir], env);
    expectOneLineError(res, 2, /invalid scsAsId/);
    expect(existsSync(dir)).to.equal(false);
  });

  it('suspending an AS that was never onboarded fails with NOT_FOUND', async () => {
    expectOneLineError(await aese(['as', 'suspend', 'nobody'], env), 1, /no such SCS\/AS \(NOT_FOUND\)/);
  });

  it('says which address it could not reach when authentication is down', async () => {
    const res = await aese(['as', 'list'], { ...env, AUTHENTICATION_ADDR: 'localhost:1' });
    expectOneLineError(res, 1, /cannot reach the authentication service at localhost:1/);
  });

  it('shows the authorization policy version in force through the operator identity', async () => {
    const res = await aese(['policy', 'show', '--json'], env);
    expect(res.code, res.stderr).to.equal(0);
    const shown = JSON.parse(res.stdout) as { version: number; policies: string };
    expect(shown.version).to.be.a('number').greaterThanOrEqual(1);
    expect(shown.policies).to.be.a('string').and.not.equal('');
  });

  describe('only the operator identity may administer the registry', () => {
    it('refuses every admin RPC to a mesh service certificate (PERMISSION_DENIED)', async () => {
      for (const service of ['edge', 'crypto', 'authorization'] as const) {
        const client = createMeshClient(AuthenticationServiceClient, {
          address: mesh.env['AUTHENTICATION_ADDR'],
          tls: mesh.tls(service),
          serverId: mesh.id('authentication'),
        });
        try {
          const calls = [
            () => client.listApplicationServers({}),
            () => client.suspendApplicationServer({ scsAsId: 'legacy-as' }),
            () =>
              client.registerApplicationServer({
                scsAsId: 'intruder',
                certificateThumbprints: ['A'.repeat(43)],
                scopes: ['3gpp-as-session-with-qos'],
                signingKeysJson: [],
                encryptionKeyJson: '',
                signatureProfile: 1,
              }),
          ];
          for (const call of calls) {
            const err = await call().then(
              () => undefined,
              (e: unknown) => e,
            );
            expect(err, service).to.be.instanceOf(AeseError);
            expect((err as AeseError).code).to.equal('CALLER_NOT_ALLOWED');
            expect(((err as AeseError).cause as ServiceError).code).to.equal(GrpcStatus.PERMISSION_DENIED);
          }
        } finally {
          client.close();
        }
      }
      expect((await list()).map(a => a.scsAsId)).not.to.include('intruder');
      expect((await list()).find(a => a.scsAsId === 'legacy-as')?.status).to.equal('active');
    });

    it('the CLI run with a service certificate in place of the operator one is refused', async () => {
      const forged = tempDir('aese-cli-forged');
      try {
        cpSync(mesh.stateDir, forged.path, { recursive: true });
        const real = pkiLayout(mesh.stateDir);
        const fake = pkiLayout(forged.path);
        cpSync(real.services.edge.cert, fake.operator.cert);
        cpSync(real.services.edge.key, fake.operator.key);
        const res = await aese(['as', 'list'], { ...env, AESE_STATE_DIR: forged.path });
        expectOneLineError(res, 1, /not allowed.*\(CALLER_NOT_ALLOWED\)/);
      } finally {
        forged.remove();
      }
    });
  });
});
