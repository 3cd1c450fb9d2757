import { expect } from 'chai';
import { InvokeStreamRequest } from '../src/gen/aese/capability_exposure/v1/capability_exposure.ts';
import type { InvokeStreamCall } from '../src/gen/aese/capability_exposure/v1/capability_exposure.ts';
import { approxMessageBytes, STREAM_BATCH_MAX_BYTES, STREAM_BATCH_MAX_ITEMS, STREAM_ITEM_ENVELOPE_BYTES, TurnBatcher } from '../src/stream-batch.ts';

const nextTurn = (): Promise<void> => new Promise(r => setImmediate(r));

function invokeCall(id: number, bodyBytes: number, text = 'x'): InvokeStreamCall {
  return {
    id,
    request: {
      scsAsId: 'as-é',
      method: 'POST',
      path: `/3gpp-monitoring-event/v1/as-é/subscriptions/${text}`,
      contentType: 'application/json',
      body: Buffer.alloc(bodyBytes, 1),
      scopes: ['3gpp-monitoring-event', 'ünïcode'],
      apiRoot: 'https://localhost:8443',
    },
    timeoutMs: 5_000,
    traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
  };
}

describe('protos stream batches', () => {
  it('estimates a message, with its envelope, at or above its encoded size, for small and large bodies and non-ASCII text', () => {
    for (const [bytes, text] of [
      [0, 'a'],
      [10, 'ß'.repeat(40)],
      [70_000, '€'],
    ] as const) {
      const call = invokeCall(1, bytes, text);
      const encoded = InvokeStreamRequest.encode({ calls: [call] }).finish().length;
      expect(approxMessageBytes(call), `body ${bytes}`).to.be.at.least(encoded);
      expect(approxMessageBytes(call), 'not wildly above').to.be.below(encoded + 2_000);
      // What the batcher counts: the request's estimate and the envelope.
      expect(approxMessageBytes(call.request) + STREAM_ITEM_ENVELOPE_BYTES, `envelope, body ${bytes}`).to.be.at.least(encoded);
    }
  });

  it('sends the items pushed in one turn as one batch, after the turn, and nothing when nothing was pushed', async () => {
    const sent: number[][] = [];
    const b = new TurnBatcher<number>(items => sent.push(items));
    b.push(1, 10);
    b.push(2, 10);
    b.push(3, 10);
    expect(sent, 'nothing before the turn ends').to.deep.equal([]);
    await nextTurn();
    expect(sent).to.deep.equal([[1, 2, 3]]);
    await nextTurn();
    b.push(4, 10);
    await nextTurn();
    expect(sent).to.deep.equal([[1, 2, 3], [4]]);
  });

  it('starts a new batch when one is full by count or by bytes; an oversized item travels alone', async () => {
    const sent: number[][] = [];
    const b = new TurnBatcher<number>(items => sent.push(items));
    for (let i = 0; i < STREAM_BATCH_MAX_ITEMS + 1; i++) b.push(i, 1);
    expect(sent.length, 'the full batch left at once').to.equal(1);
    expect(sent[0].length).to.equal(STREAM_BATCH_MAX_ITEMS);
    await nextTurn();
    expect(sent[1]).to.deep.equal([STREAM_BATCH_MAX_ITEMS]);

    sent.length = 0;
    // Each item counts its envelope on top of its message's estimate.
    const half = STREAM_BATCH_MAX_BYTES / 2 - STREAM_ITEM_ENVELOPE_BYTES;
    b.push(1, half);
    b.push(2, half);
    b.push(3, 1);
    b.push(4, STREAM_BATCH_MAX_BYTES * 2);
    b.push(5, 1);
    await nextTurn();
    expect(sent).to.deep.equal([[1, 2], [3], [4], [5]]);
  });

  it('flush sends at once; discard drops what gathered and the turn sends nothing', async () => {
    const sent: number[][] = [];
    const b = new TurnBatcher<number>(items => sent.push(items));
    b.push(1, 1);
    b.flush();
    expect(sent).to.deep.equal([[1]]);
    b.push(2, 1);
    b.discard();
    await nextTurn();
    expect(sent).to.deep.equal([[1]]);
  });
});
