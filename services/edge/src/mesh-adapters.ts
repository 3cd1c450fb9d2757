import { AeseError } from '@aese/errors';
import { cryptoAuditSigner, cryptoEventSigner, cryptoEventVerifier } from '@aese/events';
import type { EventSigner, EventVerifier } from '@aese/events';
import { createMeshClient, createStreamingCaller } from '@aese/grpc-client';
import type { SignatureAlgorithm } from '@aese/http-signatures';
import { certificateThumbprint } from '@aese/pki';
import { ApplicationServerStatus, AuthenticationServiceClient, SignatureProfile } from '@aese/protos/authentication/v1';
import type { ApplicationServer as PbApplicationServer } from '@aese/protos/authentication/v1';
import { CapabilityExposureServiceClient } from '@aese/protos/capability-exposure/v1';
import type { InvokeStreamResponse } from '@aese/protos/capability-exposure/v1';
import { KeyPurpose as PbKeyPurpose, SignatureAlgorithm as PbAlgorithm } from '@aese/protos/common/v1';
import { CryptoServiceClient } from '@aese/protos/crypto/v1';
import type { PublicKey } from '@aese/protos/crypto/v1';
import { ReplayGuardServiceClient, Verdict } from '@aese/protos/replay-guard/v1';
import { serviceId } from '@aese/runtime';
import type { CacheLookups } from '@aese/telemetry';
import type { CommonConfig, MeshTls } from '@aese/runtime';
import type { ApiModule } from './domain/api-catalogue.js';
import { encryptionKeyOf } from './domain/application-server.js';
import type { ApplicationServer, EncryptionJwk, RegisteredKeyCache } from './domain/application-server.js';
import type { DelegatedKeyGrant } from './domain/delegated-signing-key.js';
import type { KeyPurpose, PublishedKey } from './domain/jwks.js';
import type { IssuedToken, TokenRequest } from './domain/oauth.js';
import { ReusableAnswers } from './domain/reusable-answers.js';
import type { ReuseStats } from './domain/reusable-answers.js';
import type { VerifiedToken } from './domain/token-cache.js';
import type { InvokeAnswer, InvokeCall, ReplayVerdict } from './t8-handler.js';

/** Deadlines of the capability-exposure calls and of one replay check, and answer reuse (EDGE_SETTINGS). */
export interface MeshDeadlines {
  readonly invokeDeadlineMs: number;
  readonly replayDeadlineMs: number;
  /** How long an answer capability-exposure marked reusable is given again at most; 0: never. */
  readonly answerReuseMaxAgeMs: number;
}

/** The mesh services as the edge uses them: plain domain functions over the gRPC clients. */
export interface MeshAdapters {
  /** authentication ResolveClient: the AS a verified client certificate is registered to. */
  readonly resolveClient: (certificateDer: Uint8Array, keys: RegisteredKeyCache) => Promise<ApplicationServer>;
  /** authentication VerifyToken: the token, bound to the certificate presenting it. */
  readonly verifyToken: (token: string, certificateDer: Uint8Array) => Promise<VerifiedToken>;
  /** authentication IssueToken. */
  readonly issueToken: (input: TokenRequest & { certificateDer: Uint8Array }) => Promise<IssuedToken>;
  /** authentication RevokeOwnToken (RFC 7009): whether the token was the client's own and is now revoked. */
  readonly revokeOwnToken: (token: string, certificateDer: Uint8Array) => Promise<boolean>;
  /** The encryption key an AS registered (authentication GetApplicationServer), if any. */
  readonly encryptionKey: (scsAsId: string) => Promise<EncryptionJwk | undefined>;
  /** capability-exposure ListApis. */
  readonly listApis: () => Promise<ApiModule[]>;
  /** crypto DelegateSigningKey: a fresh message-signing key for this edge. */
  readonly delegateSigningKey: () => Promise<DelegatedKeyGrant>;
  /** crypto GetJwks. */
  readonly getJwks: () => Promise<PublishedKey[]>;
  /** replay-guard CheckAndRecord; throws when it cannot decide. */
  readonly checkReplay: (scsAsId: string, nonce: string, created: number) => Promise<ReplayVerdict>;
  /** capability-exposure Invoke; a reusable answer it gave is given again, at once, until withdrawn. */
  readonly invoke: (call: InvokeCall) => InvokeAnswer | Promise<InvokeAnswer>;
  /** Answers given again without the hop, and lookups that missed. */
  readonly answerReuse: () => ReuseStats;
  /** Signs audit checkpoints with crypto's audit-signing key. */
  readonly auditSigner: EventSigner;
  /** Signs notification outcomes with crypto's event-signing key. */
  readonly eventSigner: EventSigner;
  /** Verifies control events and notification requests with crypto's event-signing keys. */
  readonly eventVerifier: EventVerifier;
  /** Closes every client. */
  close(): void;
}

const PURPOSES: Partial<Record<number, KeyPurpose>> = {
  [PbKeyPurpose.KEY_PURPOSE_ACCESS_TOKEN]: 'access-token',
  [PbKeyPurpose.KEY_PURPOSE_MESSAGE_SIGNING]: 'message-signing',
  [PbKeyPurpose.KEY_PURPOSE_EVENT_SIGNING]: 'event-signing',
};
const ALGORITHMS: Partial<Record<number, PublishedKey['alg']>> = {
  [PbAlgorithm.SIGNATURE_ALGORITHM_ES256]: 'ES256',
  [PbAlgorithm.SIGNATURE_ALGORITHM_EDDSA]: 'EdDSA',
};

function toPublishedKey(k: PublicKey): PublishedKey {
  return { kid: k.kid, alg: ALGORITHMS[k.algorithm], purpose: PURPOSES[k.purpose] ?? 'unknown', jwkJson: k.jwkJson };
}

/** RFC 9421 names of the algorithms a delegated message-signing key may have. */
const MESSAGE_ALGORITHMS: Partial<Record<number, SignatureAlgorithm>> = {
  [PbAlgorithm.SIGNATURE_ALGORITHM_ES256]: 'ecdsa-p256-sha256',
  [PbAlgorithm.SIGNATURE_ALGORITHM_EDDSA]: 'ed25519',
};

const REPLAY_VERDICTS: Partial<Record<number, ReplayVerdict>> = {
  [Verdict.VERDICT_ACCEPTED]: 'accepted',
  [Verdict.VERDICT_REPLAYED]: 'replayed',
  [Verdict.VERDICT_STALE]: 'stale',
  [Verdict.VERDICT_FUTURE]: 'future',
};

/** The registry's record of an AS, in the form the edge checks requests against. */
function toApplicationServer(pb: PbApplicationServer, certificateDer: Uint8Array, keys: RegisteredKeyCache): ApplicationServer {
  return {
    scsAsId: pb.scsAsId,
    active: pb.status === ApplicationServerStatus.APPLICATION_SERVER_STATUS_ACTIVE,
    // Unspecified means the default: required.
    signatureProfile: pb.signatureProfile === SignatureProfile.SIGNATURE_PROFILE_OPTIONAL ? 'optional' : 'required',
    ...keys.keysOf(pb.signingKeysJson, pb.encryptionKeyJson),
    thumbprint: certificateThumbprint(certificateDer),
  };
}

/** The edge's mesh clients (authentication, crypto, capability-exposure, replay-guard), adapted. */
export function createMeshAdapters(common: CommonConfig, config: MeshDeadlines, meshTls: MeshTls, answerLookups?: CacheLookups): MeshAdapters {
  const td = common.trustDomain;
  const authentication = createMeshClient(AuthenticationServiceClient, {
    address: common.addrAuthentication,
    tls: meshTls,
    serverId: serviceId(td, 'authentication'),
  });
  const crypto = createMeshClient(CryptoServiceClient, {
    address: common.addrCrypto,
    tls: meshTls,
    serverId: serviceId(td, 'crypto'),
  });
  const capabilities = createMeshClient(CapabilityExposureServiceClient, {
    address: common.addrCapabilityExposure,
    tls: meshTls,
    serverId: serviceId(td, 'capability-exposure'),
    deadlineMs: config.invokeDeadlineMs,
  });
  // The two per-request hops run over one multiplexed stream each (a fraction of a unary call's cost).
  const replayStream = createStreamingCaller(ReplayGuardServiceClient, 'checkAndRecordStream', {
    address: common.addrReplayGuard,
    tls: meshTls,
    serverId: serviceId(td, 'replay-guard'),
    deadlineMs: config.replayDeadlineMs,
  });
  const answers = new ReusableAnswers<InvokeAnswer>(config.answerReuseMaxAgeMs, undefined, undefined, answerLookups);
  const invokeStream = createStreamingCaller(CapabilityExposureServiceClient, 'invokeStream', {
    address: common.addrCapabilityExposure,
    tls: meshTls,
    serverId: serviceId(td, 'capability-exposure'),
    deadlineMs: config.invokeDeadlineMs,
    // Capability-exposure withdraws the reusable answers it gave on this stream; a stream that
    // ends can withdraw nothing more, so everything it gave goes with it.
    onMessage: m => {
      const w = (m as InvokeStreamResponse).withdrawal;
      if (w === undefined) return;
      if (w.all) answers.withdrawAll();
      else answers.withdrawAs(w.scsAsIds);
    },
    onStreamEnd: () => answers.withdrawAll(),
  });
  const clients = [authentication, crypto, capabilities, replayStream, invokeStream];

  /** One Invoke through the stream; a reusable read's answer is kept for the next identical call. */
  const invokeCapability = async (call: InvokeCall, key: string | undefined): Promise<InvokeAnswer> => {
    const sentAt = answers.epochOf(call.scsAsId);
    try {
      // The body is read-only here: a Buffer goes as it is (no copy per request).
      const body = Buffer.isBuffer(call.body) ? call.body : Buffer.from(call.body);
      const out = await invokeStream.call({ ...call, body, scopes: [...call.scopes] });
      const answer: InvokeAnswer = { status: out.status, headers: out.headers, body: out.body, obligations: out.obligations };
      if (key !== undefined && out.reusable) answers.offer(key, call.scsAsId, answer, sentAt, out.body.length);
      return answer;
    } finally {
      if (key === undefined) answers.withdrawAs([call.scsAsId]);
    }
  };

  return {
    resolveClient: async (certificateDer, keys) => {
      const { applicationServer } = await authentication.resolveClient({ certificateDer: Buffer.from(certificateDer) });
      if (!applicationServer) throw new AeseError('UNAVAILABLE', 'ResolveClient answered without an application server');
      return toApplicationServer(applicationServer, certificateDer, keys);
    },
    verifyToken: async (token, certificateDer) => {
      const out = await authentication.verifyToken({ token, certificateDer: Buffer.from(certificateDer) });
      return { scsAsId: out.scsAsId, scopes: out.scopes, jti: out.jti, expiresAt: out.expiresAt };
    },
    issueToken: async input => {
      const out = await authentication.issueToken({ ...input, certificateDer: Buffer.from(input.certificateDer) });
      return { accessToken: out.accessToken, expiresIn: out.expiresIn, scope: out.scope };
    },
    revokeOwnToken: async (token, certificateDer) => (await authentication.revokeOwnToken({ token, certificateDer: Buffer.from(certificateDer) })).revoked,
    encryptionKey: async scsAsId => {
      const { applicationServer } = await authentication.getApplicationServer({ scsAsId });
      return applicationServer ? encryptionKeyOf(applicationServer.encryptionKeyJson) : undefined;
    },
    listApis: async () =>
      (await capabilities.listApis({})).apis.map(a => ({
        name: a.name,
        version: a.version,
        scope: a.scope,
        routes: a.routes.map(r => ({ method: r.method, path: r.path })),
      })),
    delegateSigningKey: async () => {
      const out = await crypto.delegateSigningKey({ purpose: PbKeyPurpose.KEY_PURPOSE_MESSAGE_SIGNING });
      const alg = MESSAGE_ALGORITHMS[out.algorithm];
      if (!alg) throw new AeseError('UNAVAILABLE', 'the delegated signing key has an unsupported algorithm');
      return { kid: out.kid, alg, pkcs8: out.privateKeyPkcs8, notAfterMs: out.notAfterMs };
    },
    getJwks: async () => (await crypto.getJwks({})).keys.map(toPublishedKey),
    checkReplay: async (scsAsId, nonce, created) => {
      const { verdict } = await replayStream.call({ scsAsId, nonce, created });
      const out = REPLAY_VERDICTS[verdict];
      if (!out) throw new AeseError('UNAVAILABLE', 'the replay guard gave no verdict');
      return out;
    },
    invoke: call => {
      const key = ReusableAnswers.keyOf(call);
      if (key !== undefined) {
        const again = answers.lookup(key);
        if (again !== undefined) return again;
      } else {
        // The AS's own write: nothing it reads afterwards may come from before it.
        answers.withdrawAs([call.scsAsId]);
      }
      return invokeCapability(call, key);
    },
    answerReuse: () => answers.stats,
    auditSigner: cryptoAuditSigner(crypto),
    eventSigner: cryptoEventSigner(crypto),
    eventVerifier: cryptoEventVerifier(crypto),
    close: () => {
      for (const c of clients) c.close();
    },
  };
}
