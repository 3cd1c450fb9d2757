import { connect, createServer } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A TCP relay in front of a server that a test can shut or stall: one client cut off from a
 * server that stays up for everyone else (a partition), which stopping the server cannot give.
 * Shut drops the connections (the client sees them close); stall keeps them open and forwards
 * nothing (a partition that loses packets: the client sees nothing until its pings go unanswered).
 */
export interface TcpGate {
  /** The relay's port on 127.0.0.1. */
  readonly port: number;
  /** The relay's address as a NATS URL. */
  readonly url: string;
  /** The relay's address as a gRPC target (`localhost:<port>`). */
  readonly address: string;
  /** Lets connections through again; after a stall, what was held back is forwarded, in order. */
  open(): void;
  /** Keeps every connection open but forwards nothing either way until {@link open}. */
  stall(): void;
  /** Drops every relayed connection and refuses new ones. */
  shut(): void;
  dispose(): Promise<void>;
}

/** Starts a relay on a free loopback port to `127.0.0.1:targetPort`, open. */
export async function startTcpGate(targetPort: number): Promise<TcpGate> {
  let open = true;
  let stalled = false;
  const sockets = new Set<Socket>();
  /** Bytes held back while stalled, per destination, forwarded on open. */
  const held = new Map<Socket, Buffer[]>();
  const server = createServer(client => {
    if (!open) {
      client.destroy();
      return;
    }
    const upstream = connect({ host: '127.0.0.1', port: targetPort });
    const drop = (): void => {
      for (const s of [client, upstream]) {
        s.destroy();
        sockets.delete(s);
      }
    };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', drop).on('close', drop);
    }
    const forward = (from: Socket, to: Socket): void => {
      from.on('data', (chunk: Buffer) => {
        if (stalled) held.set(to, [...(held.get(to) ?? []), chunk]);
        else to.write(chunk);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>(resolve => server.listen(0, '127.0.0.1', resolve));
  const shut = (): void => {
    open = false;
    held.clear();
    for (const s of [...sockets]) s.destroy();
    sockets.clear();
  };
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `nats://127.0.0.1:${port}`,
    address: `localhost:${port}`,
    open: () => {
      open = true;
      stalled = false;
      for (const [to, chunks] of held) if (!to.destroyed) for (const c of chunks) to.write(c);
      held.clear();
    },
    stall: () => {
      stalled = true;
    },
    shut,
    dispose: async () => {
      shut();
      await new Promise<void>(resolve => server.close(() => resolve()));
    },
  };
}
