import { readFileSync } from 'node:fs';
import { loadConfig, int, oneOf, str } from '@aese/config';
import type { Env } from '@aese/config';
import { AeseError } from '@aese/errors';
import { createMeshServer, mount } from '@aese/grpc-server';
import type { Logger } from '@aese/logger';
import { AuditLog, CONTROL_SUBJECTS, ControlPublisher, NatsAuditSink, ensureAuditStream, ensureControlStream } from '@aese/events';
import { KeyRotated } from '@aese/protos/events/v1';
import { spiffeId, OPERATOR_NAME } from '@aese/pki';
import { SIGNED_PLACE_OWNERS } from '@aese/nats-trust';
import { PROTO_FILES } from '@aese/protos';
import { CryptoServiceService } from '@aese/protos/crypto/v1';
import { connectServiceNats, loadCommonConfig, MESH_ENDPOINTS, portSetting, serviceId, serviceTls, startMeshServiceMetrics } from '@aese/runtime';
import type { Stoppable } from '@aese/runtime';
import { KeyCustody, KEY_ALGORITHMS } from './domain/keys.js';
import type { KeyAlgorithm, KeyPurpose } from './domain/keys.js';
import { cryptoHandlers } from './handlers.js';
import { KvKeyStore } from './kv-key-store.js';
import { auditCheckpointRule, eventPlaceRule } from './domain/signing-rules.js';

/** Retired keys stay published this long: the 10-minute token ceiling plus leeway and margin. */
export const DEFAULT_KEY_RETIREMENT_S = 15 * 60;

export const CRYPTO_SETTINGS = {
  port: portSetting(MESH_ENDPOINTS.crypto.port),
  kekFile: str('CRYPTO_KEK_FILE'),
  tokenAlgorithm: oneOf('CRYPTO_TOKEN_ALG', KEY_ALGORITHMS, 'ES256'),
  messageAlgorithm: oneOf('CRYPTO_MESSAGE_ALG', KEY_ALGORITHMS, 'ES256'),
  /** Retired access-token and message keys stay published this long (event-signing keys always do). */
  retirementS: int('CRYPTO_KEY_RETIREMENT_S', DEFAULT_KEY_RETIREMENT_S, 1, 7 * 24 * 3600),
  delegationS: int('CRYPTO_DELEGATION_S', 3600, 60, 24 * 3600),
  /** Scheduled rotation of the token and message keys; 0 turns it off. */
  rotationIntervalS: int('CRYPTO_ROTATION_INTERVAL_S', 0, 0, 365 * 24 * 3600),
} as const;

export interface RunningService extends Stoppable {
  readonly port: number;
}

/** Reads the key-encryption key: 32 bytes, base64, from a file only the service can read. */
function readKek(path: string): Buffer {
  let kek: Buffer;
  try {
    kek = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
  } catch (err) {
    throw new AeseError('FAILED_PRECONDITION', `cannot read CRYPTO_KEK_FILE ${path}`, { cause: err });
  }
  if (kek.length !== 32) throw new AeseError('FAILED_PRECONDITION', 'CRYPTO_KEK_FILE must hold 32 bytes, base64-encoded');
  return kek;
}

/** Starts the crypto service: key custody over KV, served on mTLS gRPC. */
export async function startCryptoService(env: Env, logger: Logger): Promise<RunningService> {
  const common = loadCommonConfig(env);
  const config = loadConfig(CRYPTO_SETTINGS, env);
  const kek = readKek(config.kekFile);
  const td = common.trustDomain;
  const svc = (name: Parameters<typeof serviceId>[1]) => serviceId(td, name);
  const operator = spiffeId(td, 'operator', OPERATOR_NAME);

  const telemetry = await startMeshServiceMetrics(common, 'crypto');
  const nc = await connectServiceNats(common, 'crypto', logger, telemetry.meter);
  const store = await KvKeyStore.open(nc);
  await ensureControlStream(nc);
  await ensureAuditStream(nc);
  const audit = new AuditLog('crypto', new NatsAuditSink(nc), err => logger.error({ err }, 'audit write failed'), {
    // Crypto signs its own chain heads; `custody` exists before the first checkpoint is due.
    signer: { sign: data => custody.sign(svc('crypto'), 'audit-signing', data) },
  });
  const custody = new KeyCustody({
    store,
    kek,
    signers: {
      'access-token': [svc('authentication')],
      'message-signing': [svc('edge')],
      // The edge signs only the outcomes of the notifications it delivers (SIGNED_PLACE_OWNERS).
      'event-signing': [svc('authentication'), svc('authorization'), svc('capability-exposure'), svc('crypto'), svc('edge')],
      // Every service that writes an audit chain signs its checkpoints (replay-guard writes none).
      'audit-signing': [svc('authentication'), svc('authorization'), svc('edge'), svc('capability-exposure'), svc('crypto')],
    },
    algorithms: { 'access-token': config.tokenAlgorithm, 'message-signing': config.messageAlgorithm, 'event-signing': 'ES256', 'audit-signing': 'ES256' },
    retirementMs: config.retirementS * 1000,
    delegates: { 'message-signing': [svc('edge')] },
    contentRules: { 'event-signing': eventPlaceRule(SIGNED_PLACE_OWNERS), 'audit-signing': auditCheckpointRule },
    delegationMs: config.delegationS * 1000,
    // A record crypto did not write (or altered since): one line and one audit event per record.
    onRejected: (kid, reason) => {
      logger.error({ kid, reason }, `key record ${kid} in the signing-keys bucket ignored: ${reason}`);
      audit.record({ actor: 'unknown', action: 'key.record', decision: 'deny', reason: 'KEY_RECORD_REJECTED', detail: { kid, why: reason } });
    },
  });
  try {
    await custody.init();
  } catch (err) {
    await audit.flush();
    await nc.drain();
    throw err;
  }
  const unwatch = await store.watch(r => void custody.apply(r));
  const selfId = svc('crypto');
  const events = new ControlPublisher(nc, { sign: data => custody.sign(selfId, 'event-signing', data) });
  /** Rotates, then tells every replica of every service (they refresh their key sets) and audits. */
  const rotate = async (purpose: KeyPurpose, alg: KeyAlgorithm | undefined, actor: string) => {
    const out = await custody.rotate(purpose, alg);
    const payload = KeyRotated.encode({ kid: out.key.kid, retiredKid: out.retiredKid ?? '', rotatedAtMs: out.key.createdAtMs }).finish();
    const version = await events.publish(CONTROL_SUBJECTS.keys, 'aese.events.v1.KeyRotated', payload);
    audit.record({ actor, action: 'key.rotate', decision: 'change', reason: purpose, detail: { kid: out.key.kid, version } });
    return out;
  };
  const rotationTimer =
    config.rotationIntervalS > 0
      ? setInterval(() => {
          for (const purpose of ['access-token', 'message-signing'] as const) {
            rotate(purpose, undefined, selfId).catch((err: unknown) => logger.error({ err, purpose }, 'scheduled rotation failed'));
          }
        }, config.rotationIntervalS * 1000)
      : undefined;
  rotationTimer?.unref();

  const readers = [svc('authentication'), svc('authorization'), svc('edge'), svc('capability-exposure'), svc('replay-guard'), operator];
  const server = createMeshServer({
    name: 'crypto',
    tls: serviceTls(common.stateDir, 'crypto'),
    logger,
    protoFiles: [PROTO_FILES.crypto],
    serviceNames: ['aese.crypto.v1.CryptoService'],
    services: [
      mount({
        definition: CryptoServiceService,
        handlers: cryptoHandlers(custody, rotate),
        allowedCallers: {
          // Who may sign with which key is decided per purpose inside the custody.
          sign: [svc('authentication'), svc('authorization'), svc('edge'), svc('capability-exposure'), svc('crypto')],
          verify: readers,
          getJwks: readers,
          rotateKey: [operator],
          // Who may receive which delegated key is decided per purpose inside the custody.
          delegateSigningKey: [svc('edge')],
        },
      }),
    ],
  });
  const port = await server.listen(common.listenHost, config.port);
  server.setServing(true);
  logger.info({ port }, 'crypto service serving');
  return {
    port,
    stop: async () => {
      await server.shutdown();
      if (rotationTimer) clearInterval(rotationTimer);
      unwatch();
      await audit.flush();
      await nc.drain();
      await telemetry.stop();
    },
  };
}
