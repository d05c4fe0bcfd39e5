import { connect, createServer, type Socket } from 'node:net';

/**
 * A TCP proxy on a loopback port in front of `targetPort`, that a test can
 * break on purpose: cut every connection, refuse new ones, or go silent
 * (keep connections open but forward nothing, as a dead NAT entry or a
 * partition does).
 */
export interface TcpProxy {
  readonly port: number;
  /** http://127.0.0.1:<port> */
  readonly url: string;
  /** Connections dropped at once since the start, while refusing. */
  readonly refused: number;
  /** Connections open through it. */
  readonly open: number;
  /** Destroys every connection through it, both sides. */
  cut(): void;
  /** While on, a new connection is accepted and dropped at once. */
  refuse(on: boolean): void;
  /** While on, nothing is forwarded either way; connections stay open. */
  silence(on: boolean): void;
  close(): Promise<void>;
}

export async function startTcpProxy(targetPort: number): Promise<TcpProxy> {
  const pairs = new Set<[Socket, Socket]>();
  let refusing = false;
  let silent = false;
  let refused = 0;
  const server = createServer((client) => {
    if (refusing) {
      refused += 1;
      client.destroy();
      return;
    }
    const upstream = connect(targetPort, '127.0.0.1');
    const pair: [Socket, Socket] = [client, upstream];
    pairs.add(pair);
    const drop = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    // Forwarded by hand rather than piped, so that silence drops bytes
    // instead of buffering them for later.
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk) => {
        if (!silent) to.write(chunk);
      });
      from.on('end', () => to.end());
      from.on('error', drop);
      from.on('close', drop);
    };
    forward(client, upstream);
    forward(upstream, client);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  const cut = () => {
    for (const [client, upstream] of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    get refused() {
      return refused;
    },
    get open() {
      return pairs.size;
    },
    cut,
    refuse: (on) => {
      refusing = on;
    },
    silence: (on) => {
      silent = on;
    },
    close: async () => {
      cut();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
