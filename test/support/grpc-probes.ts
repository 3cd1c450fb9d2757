import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { ChannelCredentials, loadPackageDefinition } from '@grpc/grpc-js';
import type { Client, ServiceError } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { protoPath as HEALTH_PROTO_PATH } from 'grpc-health-check';
import type { MeshTls } from '@aese/runtime';

const require = createRequire(import.meta.url);
const REFLECTION_PROTO = join(dirname(require.resolve('@grpc/reflection/package.json')), 'build/proto/grpc/reflection/v1/reflection.proto');

type AnyClient = Client & Record<string, (...args: unknown[]) => unknown>;
type Ctor = new (address: string, creds: ChannelCredentials) => AnyClient;

function ctor(path: string, pkgPath: string[]): Ctor {
  const def = loadPackageDefinition(loadSync(path, { keepCase: true, enums: String }));
  let node: unknown = def;
  for (const p of pkgPath) node = (node as Record<string, unknown>)[p];
  return node as Ctor;
}

/** mTLS credentials for a mesh identity (hostname checks apply: dial `localhost:<port>`). */
export function meshCredentials(tls: MeshTls): ChannelCredentials {
  return ChannelCredentials.createSsl(Buffer.from(tls.caPem), Buffer.from(tls.keyPem), Buffer.from(tls.certPem));
}

/** grpc.health.v1 Check over the given credentials. */
export function healthCheck(address: string, creds: ChannelCredentials, service = ''): Promise<string> {
  const Health = ctor(HEALTH_PROTO_PATH, ['grpc', 'health', 'v1', 'Health']);
  const client = new Health(address, creds);
  return new Promise((resolve, reject) => {
    (client['Check'] as (req: unknown, opts: unknown, cb: (e: ServiceError | null, r: { status: string }) => void) => void)(
      { service },
      { deadline: Date.now() + 3000 },
      (err, res) => {
        client.close();
        if (err) reject(err);
        else resolve(res.status);
      },
    );
  });
}

/** The service names a server lists through gRPC server reflection (v1). */
export function reflectionServices(address: string, creds: ChannelCredentials): Promise<string[]> {
  const Reflection = ctor(REFLECTION_PROTO, ['grpc', 'reflection', 'v1', 'ServerReflection']);
  const client = new Reflection(address, creds);
  return new Promise((resolve, reject) => {
    const call = (client['ServerReflectionInfo'] as (opts: unknown) => NodeJS.EventEmitter & { write(m: unknown): void; end(): void })({
      deadline: Date.now() + 3000,
    });
    call.on('data', (msg: { list_services_response?: { service: { name: string }[] } }) => {
      resolve((msg.list_services_response?.service ?? []).map(s => s.name));
      call.end();
    });
    call.on('error', (err: Error) => reject(err));
    call.on('end', () => client.close());
    call.write({ list_services: '' });
  });
}
