import { ApplicationServerStatus, SignatureProfile } from '@aese/protos/authentication/v1';
import type { AuthenticationServiceService, ApplicationServer as PbApplicationServer } from '@aese/protos/authentication/v1';
import { AeseError } from '@aese/errors';
import type { HandlersOf } from '@aese/grpc-server';
import type { ApplicationServer, Registry } from './domain/registry.js';
import type { TokenService } from './domain/tokens.js';

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
export function authenticationHandlers(registry: Registry, tokens: TokenService): HandlersOf<typeof AuthenticationServiceService> {
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
    listApplicationServers: async () => ({ applicationServers: (await registry.list()).map(toPb) }),
    suspendApplicationServer: async req => ({ applicationServer: toPb(await registry.suspend(req.scsAsId)) }),
  };
}
