import { expect } from 'chai';
import { createPublicKey } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, SignJWT } from 'jose';
import { AeseError } from '@aese/errors';
import { createMeshClient } from '@aese/grpc-client';
import type { MeshClient } from '@aese/grpc-client';
import { AuthenticationServiceClient } from '@aese/protos/authentication/v1';
import { KeyPurpose } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import { startTestMesh } from '../../../test/support/mesh.ts';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { onboardAs } from '../../../test/support/onboarding.ts';
import type { TestAs } from '../../../test/support/onboarding.ts';

const ISSUER = 'https://scef.test';
const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url');

describe('access token verification (authentication gRPC API)', function () {
  let mesh: TestMesh;
  let auth: MeshClient<AuthenticationServiceClient>;
  let cryptoAsAuthentication: MeshClient<CryptoServiceClient>;
  let asA: TestAs;
  let asB: TestAs;
  let valid: string;

  before(async () => {
    mesh = await startTestMesh({ extraEnv: { AESE_ISSUER: ISSUER } });
    auth = createMeshClient(AuthenticationServiceClient, {
      address: mesh.env['AUTHENTICATION_ADDR'],
      tls: mesh.tls('edge'),
      serverId: mesh.id('authentication'),
    });
    // Signing through crypto with the authentication identity yields tokens with a genuine
    // signature and chosen claims: the strongest forgery an attacker inside the mesh could make.
    cryptoAsAuthentication = createMeshClient(CryptoServiceClient, {
      address: mesh.env['CRYPTO_ADDR'],
      tls: mesh.tls('authentication'),
      serverId: mesh.id('crypto'),
    });
    asA = await onboardAs(mesh, 'as-a', ['3gpp-monitoring-event']);
    asB = await onboardAs(mesh, 'as-b', ['3gpp-monitoring-event']);
    valid = (await auth.issueToken({ certificateDer: asA.der, grantType: 'client_credentials', clientId: 'as-a', scope: '' })).accessToken;
  });
  after(async () => {
    auth?.close();
    cryptoAsAuthentication?.close();
    await mesh?.stop();
  });

  const verify = (token: string, der: Buffer = asA.der) => auth.verifyToken({ token, certificateDer: der });
  const rejected = async (token: string, der?: Buffer): Promise<void> => {
    const err = await verify(token, der).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err, 'token was accepted').to.be.instanceOf(AeseError);
    expect((err as AeseError).code).to.equal('INVALID_TOKEN');
    // One message for every failure: no oracle on which check failed.
    expect((err as AeseError).message).to.equal('the access token is invalid');
  };
  /** A token with a genuine signature from the access-token key over the given header and claims. */
  const signed = async (header: Record<string, unknown>, claims: Record<string, unknown>): Promise<string> => {
    const realHeader = decodeProtectedHeader(valid);
    const h = { alg: realHeader.alg, typ: 'at+jwt', kid: realHeader.kid, ...header };
    const input = `${b64(h)}.${b64(claims)}`;
    const out = await cryptoAsAuthentication.sign({ purpose: KeyPurpose.KEY_PURPOSE_ACCESS_TOKEN, data: Buffer.from(input) });
    return `${input}.${out.signature.toString('base64url')}`;
  };
  const claimsOf = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ ...decodeJwt(valid), ...over });

  it('accepts a token it issued, over the certificate it is bound to (positive control)', async () => {
    const out = await verify(valid);
    expect(out.scsAsId).to.equal('as-a');
    expect(out.scopes).to.deep.equal(['3gpp-monitoring-event']);
    const header = decodeProtectedHeader(valid);
    expect(header.typ).to.equal('at+jwt');
    const claims = decodeJwt(valid);
    expect(claims['cnf']).to.deep.equal({ 'x5t#S256': asA.thumbprint });
    expect(claims.exp! - claims.iat!).to.be.at.most(600);
    // A re-signed copy of the same claims passes too, so the negatives below fail on their change only.
    await verify(await signed({}, claimsOf()));
  });

  it('rejects alg: none', async () => {
    await rejected(`${b64({ alg: 'none', typ: 'at+jwt', kid: decodeProtectedHeader(valid).kid })}.${b64(claimsOf())}.`);
  });

  it('rejects HS256 keyed with the issuer public key (algorithm confusion)', async () => {
    const { keys } = await cryptoAsAuthentication.getJwks({});
    const jwk = JSON.parse(keys.find(k => k.kid === decodeProtectedHeader(valid).kid)!.jwkJson) as Record<string, string>;
    const pem = createPublicKey({ key: jwk as never, format: 'jwk' }).export({ format: 'pem', type: 'spki' }) as string;
    for (const secret of [pem, JSON.stringify(jwk)]) {
      const token = await new SignJWT(claimsOf()).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: jwk['kid'] }).sign(new TextEncoder().encode(secret));
      await rejected(token);
    }
  });

  it('rejects an unknown kid', async () => {
    await rejected(await signed({ kid: 'no-such-key' }, claimsOf()));
    await rejected(await signed({ kid: '../../etc/passwd' }, claimsOf()));
    await rejected(await signed({ kid: 'x'.repeat(5000) }, claimsOf()));
  });

  it('rejects jku, x5u, jwk and x5c headers even when the signature is genuine', async () => {
    const { keys } = await cryptoAsAuthentication.getJwks({});
    const jwk = JSON.parse(keys[0].jwkJson) as Record<string, string>;
    await rejected(await signed({ jku: 'https://attacker.example/jwks.json' }, claimsOf()));
    await rejected(await signed({ x5u: 'https://attacker.example/cert.pem' }, claimsOf()));
    await rejected(await signed({ jwk }, claimsOf()));
    await rejected(await signed({ x5c: ['MIIB'] }, claimsOf()));
    await rejected(await signed({ crit: ['exp'] }, claimsOf()));
  });

  it('rejects a wrong iss, aud or typ', async () => {
    await rejected(await signed({}, claimsOf({ iss: 'https://other.example' })));
    await rejected(await signed({}, claimsOf({ aud: 'https://other.example' })));
    await rejected(await signed({ typ: 'JWT' }, claimsOf()));
    await rejected(await signed({ typ: 'dpop+jwt' }, claimsOf()));
  });

  it('rejects an expired token and one not yet valid, with 10 s of leeway at most', async () => {
    const now = Math.floor(Date.now() / 1000);
    await rejected(await signed({}, claimsOf({ iat: now - 400, nbf: now - 400, exp: now - 11 })));
    await rejected(await signed({}, claimsOf({ iat: now, nbf: now + 60, exp: now + 300 })));
    await rejected(await signed({}, claimsOf({ iat: now + 60, nbf: now, exp: now + 300 })));
    // A lifetime beyond the 10-minute ceiling is refused even when unexpired.
    await rejected(await signed({}, claimsOf({ iat: now, nbf: now, exp: now + 3600 })));
    // Inside the leeway: accepted.
    await verify(await signed({}, claimsOf({ iat: now - 300, nbf: now - 300, exp: now - 5 })));
  });

  it('rejects a token bound to certificate A presented with certificate B', async () => {
    await rejected(valid, asB.der);
    // Even with client_id rewritten to B, the cnf binding still names A.
    await rejected(await signed({}, claimsOf({ client_id: 'as-b', sub: 'as-b' })), asB.der);
  });

  it('rejects a token whose client_id is not the AS of the presenting certificate', async () => {
    await rejected(await signed({}, claimsOf({ client_id: 'as-b' })));
  });

  it('rejects garbage without crashing the service', async () => {
    for (const t of ['', 'a', 'a.b', 'a.b.c', '....', '\u0000', 'e'.repeat(9000)]) await rejected(t);
    await verify(valid);
  });

  it('stops accepting tokens of a suspended AS', async () => {
    const asC = await onboardAs(mesh, 'as-c', ['3gpp-monitoring-event']);
    const token = (await auth.issueToken({ certificateDer: asC.der, grantType: 'client_credentials', clientId: '', scope: '' })).accessToken;
    expect((await verify(token, asC.der)).scsAsId).to.equal('as-c');
    const admin = createMeshClient(AuthenticationServiceClient, {
      address: mesh.env['AUTHENTICATION_ADDR'],
      tls: mesh.tls('operator'),
      serverId: mesh.id('authentication'),
    });
    await admin.suspendApplicationServer({ scsAsId: 'as-c' }).finally(() => admin.close());
    await rejected(token, asC.der);
  });

  it('never logs a token', () => {
    expect(mesh.logs.join('\n')).not.to.include(valid.split('.')[2]);
  });
});
