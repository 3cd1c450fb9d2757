import { Writable } from 'node:stream';
import { AeseError } from '@aese/errors';
import { createLogger } from '@aese/logger';
import { initPki } from '@aese/pki';
import { ReplayGuardServiceService, Verdict } from '@aese/protos/replay-guard/v1';
import type { CheckAndRecordRequest, CheckAndRecordResponse } from '@aese/protos/replay-guard/v1';
import { serviceId, serviceTls } from '@aese/runtime';
import type { MeshServiceName, MeshTls } from '@aese/runtime';
import { tempDir } from '@aese/testing';
import { createMeshServer, mount } from '../src/index.ts';
import type { CallContext, MeshServer, MeshServerOptions } from '../src/index.ts';

export const TD = 'stream.test';

/** A PKI in a temporary folder: the mesh CA and a certificate per service. */
export interface TestPki {
  tls(identity: MeshServiceName): MeshTls;
  id(identity: MeshServiceName): string;
  remove(): void;
}

export async function createTestPki(): Promise<TestPki> {
  const dir = tempDir('aese-stream');
  await initPki({ stateDir: dir.path, trustDomain: TD });
  return { tls: s => serviceTls(dir.path, s), id: s => serviceId(TD, s), remove: dir.remove };
}

/** What the test handler saw. */
export interface HandlerLog {
  calls: { scsAsId: string; caller: string }[];
  /** Aborted signals, by scsAsId. */
  aborted: string[];
  /** One entry per distinct stream (or unary call) the handler was reached through. */
  channels: Set<object>;
}

/**
 * A ReplayGuardService whose CheckAndRecord does what the request's scsAsId says: "ok" accepts,
 * "not-found" throws NOT_FOUND, "boom" throws a plain Error (a bug), "slow:<ms>" answers after
 * ms, "hang" waits for its signal. The stream method multiplexes it; only the edge may call it.
 */
export async function startTestServer(
  pki: TestPki,
  options: Partial<Pick<MeshServerOptions, 'maxInFlightPerStream' | 'shutdownGraceMs'>> & { port?: number } = {},
): Promise<{ server: MeshServer; port: number; log: HandlerLog; logs: string[] }> {
  const log: HandlerLog = { calls: [], aborted: [], channels: new Set() };
  const logs: string[] = [];
  const logger = createLogger({
    service: 'stream-test',
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _e, cb) {
        logs.push(chunk.toString('utf8'));
        cb();
      },
    }),
  });
  const handler = async (req: CheckAndRecordRequest, ctx: CallContext): Promise<CheckAndRecordResponse> => {
    log.calls.push({ scsAsId: req.scsAsId, caller: ctx.caller });
    log.channels.add(ctx.metadata);
    ctx.signal.addEventListener('abort', () => log.aborted.push(req.scsAsId), { once: true });
    const [what, arg] = req.scsAsId.split(':');
    if (what === 'not-found') throw new AeseError('NOT_FOUND', 'no such thing');
    if (what === 'boom') throw new Error('secret internal detail');
    if (what === 'slow') await new Promise(r => setTimeout(r, Number(arg)));
    if (what === 'hang') await new Promise((_r, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason as Error), { once: true }));
    return { verdict: req.created % 2 === 0 ? Verdict.VERDICT_ACCEPTED : Verdict.VERDICT_REPLAYED };
  };
  const server = createMeshServer({
    name: 'stream-test',
    tls: pki.tls('replay-guard'),
    logger,
    protoFiles: ['aese/replay_guard/v1/replay_guard.proto'],
    serviceNames: ['aese.replay_guard.v1.ReplayGuardService'],
    ...(options.maxInFlightPerStream !== undefined ? { maxInFlightPerStream: options.maxInFlightPerStream } : {}),
    ...(options.shutdownGraceMs !== undefined ? { shutdownGraceMs: options.shutdownGraceMs } : {}),
    services: [
      mount({
        definition: ReplayGuardServiceService,
        handlers: { checkAndRecord: handler },
        allowedCallers: { checkAndRecord: [pki.id('edge')] },
        streams: { checkAndRecordStream: 'checkAndRecord' },
      }),
    ],
  });
  const port = await server.listen('127.0.0.1', options.port ?? 0);
  server.setServing(true);
  return { server, port, log, logs };
}
