import { RetentionPolicy, StorageType } from 'nats';
import type { NatsConnection, StreamConfig } from 'nats';
import { AeseError } from '@aese/errors';
import { retryJetStream, streamReplicas } from '@aese/nats';

/**
 * Creates a file-backed, limits-retention stream if nobody has (every service may call it at
 * start; an existing stream's settings are left alone). Replicas follow the connection's setting.
 */
export async function ensureStream(nc: NatsConnection, config: Partial<StreamConfig> & { name: string; subjects: string[] }): Promise<void> {
  const jsm = await retryJetStream(() => nc.jetstreamManager());
  const exists = await retryJetStream(() => jsm.streams.info(config.name)).then(
    () => true,
    () => false,
  );
  if (exists) return;
  try {
    await retryJetStream(() => jsm.streams.add({ retention: RetentionPolicy.Limits, storage: StorageType.File, num_replicas: streamReplicas(nc), ...config }));
  } catch (err) {
    // Another service may have created it in the meantime.
    await jsm.streams.info(config.name).catch(() => {
      throw new AeseError('UNAVAILABLE', `cannot create the stream ${config.name}`, { cause: err });
    });
  }
}
