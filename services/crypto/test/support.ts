import type { KeyRecord, KeyRecordStore } from '../src/domain/keys.ts';

/** Key records in memory: the custody's store for domain tests. */
export class MemoryStore implements KeyRecordStore {
  readonly records = new Map<string, KeyRecord>();
  async list(): Promise<KeyRecord[]> {
    return [...this.records.values()];
  }
  async put(r: KeyRecord): Promise<void> {
    this.records.set(r.kid, r);
  }
}
