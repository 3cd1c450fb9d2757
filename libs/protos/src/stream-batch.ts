/**
 * The wire shape of the mesh's multiplexed streams (InvokeStream, CheckAndRecordStream): each
 * message carries a batch of calls or of answers, so the per-message cost of gRPC (the layers
 * of grpc-js, a DATA frame, a wake-up of the peer) is paid once per batch, not once per call.
 */

/** One call inside a batch: a unary request tagged with the caller's id. */
export interface StreamCall<Req> {
  id: number;
  request: Req | undefined;
  /** How long the caller waits for the answer; 0 means the server's default deadline. */
  timeoutMs: number;
  /** The caller's W3C `traceparent` for this call: a stream has no per-call metadata. */
  traceparent: string;
}

/** One answer inside a batch: the unary response, or a stable error code and a safe message. */
export interface StreamAnswer<Res> {
  id: number;
  response: Res | undefined;
  errorCode: string;
  errorMessage: string;
}

export interface StreamCallBatch<Req> {
  calls: StreamCall<Req>[];
}

export interface StreamAnswerBatch<Res> {
  answers: StreamAnswer<Res>[];
}

/** Most calls or answers in one message. */
export const STREAM_BATCH_MAX_ITEMS = 256;
/**
 * Most estimated bytes in one message: well under the mesh's 1 MiB message limit, so a batch is
 * never refused for its size; one item larger than this travels alone, exactly as it would unbatched.
 */
export const STREAM_BATCH_MAX_BYTES = 256 * 1024;

/** An item's envelope on top of its message: id, deadline, trace context or error code, and their tags. */
export const STREAM_ITEM_ENVELOPE_BYTES = 128;
/** A field's tag and length prefix, and a scalar's varint, at their largest. */
const FIELD_OVERHEAD_BYTES = 16;

/**
 * An upper estimate of a ts-proto message's encoded size: bytes and strings (UTF-8 at its widest)
 * by length, every field its tag and length prefix. Cheap enough for every call; a message is a
 * tree, so the walk ends.
 */
export function approxMessageBytes(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'string') return FIELD_OVERHEAD_BYTES + value.length * 3;
  if (value instanceof Uint8Array) return FIELD_OVERHEAD_BYTES + value.byteLength;
  if (typeof value !== 'object') return FIELD_OVERHEAD_BYTES;
  let bytes = FIELD_OVERHEAD_BYTES;
  if (Array.isArray(value)) {
    for (const v of value as unknown[]) bytes += approxMessageBytes(v);
    return bytes;
  }
  for (const key in value) bytes += key.length * 3 + approxMessageBytes((value as Record<string, unknown>)[key]);
  return bytes;
}

/**
 * Gathers the items written during one turn of the event loop and hands them over as one batch
 * when the turn's I/O is done (setImmediate), or at once when the batch is full. Nothing waits
 * on a timer: a lone item leaves in the same turn it was written.
 */
export class TurnBatcher<T> {
  private items: T[] = [];
  private bytes = 0;
  private scheduled: NodeJS.Immediate | undefined;

  constructor(private readonly send: (items: T[]) => void) {}

  /** Adds an item whose message is estimated at `messageBytes` (its envelope is counted here). */
  push(item: T, messageBytes: number): void {
    const bytes = messageBytes + STREAM_ITEM_ENVELOPE_BYTES;
    if (this.items.length > 0 && (this.items.length >= STREAM_BATCH_MAX_ITEMS || this.bytes + bytes > STREAM_BATCH_MAX_BYTES)) this.flush();
    this.items.push(item);
    this.bytes += bytes;
    this.scheduled ??= setImmediate(() => {
      this.scheduled = undefined;
      this.flush();
    });
  }

  /** Sends what has gathered now (before the stream ends). */
  flush(): void {
    if (this.items.length === 0) return;
    const items = this.items;
    this.items = [];
    this.bytes = 0;
    this.send(items);
  }

  /** Drops what has gathered (the stream broke; its calls are failed elsewhere). */
  discard(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    this.items = [];
    this.bytes = 0;
  }
}
