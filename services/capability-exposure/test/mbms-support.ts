import { openKv } from '@aese/nats';
import { connectNatsAs } from '@aese/testing';
import type { TestMesh } from '../../../test/support/mesh.ts';
import { SUBSCRIPTIONS_BUCKET } from '../src/kv-resource-store.ts';
import type { SimulatedCore } from '../src/network/simulated-core.ts';

/** A signed deletion: the record's signed payload holds a null value. */
function isTombstone(value: Uint8Array): boolean {
  const record = JSON.parse(Buffer.from(value).toString('utf8')) as { payloadJson: string };
  return (JSON.parse(record.payloadJson) as { value: unknown }).value === null;
}

/** What the store holds for a storage key and an AS (ids), read from the bucket itself: a watch's initial values (the newest record of every key, signed deletions left out). */
export async function storedIds(mesh: TestMesh, store: string, scsAsId: string): Promise<string[]> {
  const nc = await connectNatsAs(mesh.nats.url, mesh.stateDir, 'nats-admin');
  try {
    const kv = await openKv(nc, SUBSCRIPTIONS_BUCKET);
    const live = new Map<string, boolean>();
    let done: () => void = () => {};
    const initialized = new Promise<void>(r => (done = r));
    const watch = await kv.watch({ key: `${store}.${scsAsId}.*`, initializedFn: () => done() });
    void (async () => {
      for await (const e of watch) live.set(e.key, e.operation === 'PUT' && e.length > 0 && !isTombstone(e.value));
    })();
    await initialized;
    watch.stop();
    const ids = [...live].filter(([, on]) => on).map(([key]) => key.split('.').pop()!);
    return ids.sort();
  } finally {
    await nc.close();
  }
}

/** Makes every member of a group reachable or not, as the network would report it. */
export async function setGroupReachable(core: SimulatedCore, externalGroupId: string, reachable: boolean): Promise<void> {
  for (const ue of (await core.groupMembers(externalGroupId)) ?? []) core.mirror({ kind: 'reachability', ue, reachable, atMs: Date.now() });
}

export const sleep = (ms: number): Promise<void> => new Promise(r => setTimeout(r, ms));
export const base64 = (text: string): string => Buffer.from(text, 'utf8').toString('base64');
