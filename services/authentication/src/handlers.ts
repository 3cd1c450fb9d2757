import { ApplicationServerStatus, RevocationKind, SignatureProfile } from '@aese/protos/authentication/v1';
import type { AuthenticationServiceService, ApplicationServer as PbApplicationServer } from '@aese/protos/authentication/v1';
import { AeseError } from '@aese/errors';
import type { HandlersOf } from '@aese/grpc-server';
import type { ApplicationServer, Registry } from './domain/registry.js';
import type { TokenService } from './domain/tokens.js';
import { assertScsAsId } from './domain/registry.js';
import type { Revocation } from '@aese/revocation';

/** Publishes a revocation to every replica and applies it here; returns its version. */
export type Revoker = (r: Revocation, reason: string, actor: string) => Promise<number>;

const THUMBPRINT = /^[A-Za-z0-9_-]{43}$/;
const JTI = /^[A-Za-z0-9._-]{1,128}$/;

/** Certificates beyond this size are refused before parsing. */
const MAX_CERTIFICATE_BYTES = 16 * 1024;
const MAX_FORM_FIELD = 1024;

function toPb(as: ApplicationServer): PbApplicationServer {
  return {
    scsAsId: as.scsAsId,
    certificateThumbprints: [...as.certificateThumbprints],
    scopes: [...as.scopes],
    signingKeysJson: as.signingKeys.map(k => JSON.stringify(k)),
    encryptionKeyJson: as.encryptionKey ? JSON.stringify(as.encryptionKey) : '',
    status: as.status === 'active' ? ApplicationServerStatus.APPLICATION_SERVER_STATUS_ACTIVE : ApplicationServerStatus.APPLICATION_SERVER_STATUS_SUSPENDED,
    signatureProfile: as.signatureProfile === 'optional' ? SignatureProfile.SIGNATURE_PROFILE_OPTIONAL : SignatureProfile.SIGNATURE_PROFILE_REQUIRED,
    createdAtMs: as.createdAtMs,
    updatedAtMs: as.updatedAtMs,
  };
}

function certificate(der: Uint8Array): Uint8Array {
  if (der.length === 0 || der.length > MAX_CERTIFICATE_BYTES) throw new AeseError('INVALID_INPUT', 'certificate_der is required (at most 16 KiB)');
  return der;
}

function field(value: string, name: string): string {
  if (value.length > MAX_FORM_FIELD) throw new AeseError('INVALID_INPUT', `${name} is too long`);
  return value;
}

function parseJson(text: string, name: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new AeseError('INVALID_INPUT', `${name} is not valid JSON`);
  }
}

/** Proto <-> domain for the authentication service. */
export function authenticationHandlers(registry: Registry, tokens: TokenService, revoke: Revoker): HandlersOf<typeof AuthenticationServiceService> {
  return {
    resolveClient: async req => ({ applicationServer: toPb(await tokens.resolveClient(certificate(req.certificateDer))) }),
    issueToken: async req => {
      const out = await tokens.issue({
        certificateDer: certificate(req.certificateDer),
        grantType: field(req.grantType, 'grant_type'),
        clientId: field(req.clientId, 'client_id'),
        scope: field(req.scope, 'scope'),
      });
      return { accessToken: out.accessToken, tokenType: 'Bearer', expiresIn: out.expiresIn, scope: out.scope };
    },
    verifyToken: async req => {
      const out = await tokens.verify(req.token, certificate(req.certificateDer));
      return { scsAsId: out.scsAsId, scopes: out.scopes, jti: out.jti, expiresAt: out.expiresAt };
    },
    registerApplicationServer: async req => {
      const as = await registry.register({
        scsAsId: req.scsAsId,
        certificateThumbprints: req.certificateThumbprints,
        scopes: req.scopes,
        signingKeys: req.signingKeysJson.map((k, i) => parseJson(k, `signing_keys_json[${i}]`)),
        encryptionKey: req.encryptionKeyJson === '' ? undefined : parseJson(req.encryptionKeyJson, 'encryption_key_json'),
        signatureProfile: req.signatureProfile === SignatureProfile.SIGNATURE_PROFILE_OPTIONAL ? 'optional' : 'required',
      });
      return { applicationServer: toPb(as) };
    },
    getApplicationServer: async req => ({ applicationServer: toPb(await registry.get(req.scsAsId)) }),
    listApplicationServers: async () => ({ applicationServers: (await registry.list()).map(toPb) }),
    suspendApplicationServer: async req => ({ applicationServer: toPb(await registry.suspend(req.scsAsId)) }),
    revoke: async (req, ctx) => {
      const reason = field(req.reason, 'reason');
      let r: Revocation;
      if (req.kind === RevocationKind.REVOCATION_KIND_APPLICATION_SERVER) {
        assertScsAsId(req.scsAsId);
        r = { kind: 'application-server', scsAsId: req.scsAsId };
      } else if (req.kind === RevocationKind.REVOCATION_KIND_CERTIFICATE) {
        if (!THUMBPRINT.test(req.certificateThumbprint)) throw new AeseError('INVALID_INPUT', 'certificate_thumbprint must be base64url SHA-256');
        r = { kind: 'certificate', certificateThumbprint: req.certificateThumbprint };
      } else if (req.kind === RevocationKind.REVOCATION_KIND_TOKEN) {
        if (!JTI.test(req.jti)) throw new AeseError('INVALID_INPUT', 'jti is malformed');
        // The jti alone does not tell when the token expires: keep it for the longest lifetime.
        r = { kind: 'token', jti: req.jti, expiresAt: Math.floor(Date.now() / 1000) + 600 };
      } else {
        throw new AeseError('INVALID_INPUT', 'kind is required');
      }
      return { version: await revoke(r, reason, ctx.caller) };
    },
    revokeOwnToken: async req => {
      const own = await tokens.ownTokenId(req.token, certificate(req.certificateDer));
      if (!own) return { revoked: false };
      await revoke({ kind: 'token', jti: own.jti, expiresAt: own.expiresAt }, 'RFC 7009 revocation by the client', own.scsAsId);
      return { revoked: true };
    },
  };
}
