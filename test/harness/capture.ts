// A recording TCP relay between the proxy and a backend's plaintext port: the tests read exactly
// what the backend received (e.g. that a deep stanza, or a legacy roster iq, never got there).
import net from 'node:net';

export interface Capture {
  port: number;
  /** everything sent towards the backend, all connections, as text */
  toBackend(): string;
  /** everything the backend sent back */
  fromBackend(): string;
  stop(): Promise<void>;
}

export async function startCapture(host: string, port: number): Promise<Capture> {
  const up: Buffer[] = [];
  const down: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const backend = net.connect({ host, port });
    sockets.add(client).add(backend);
    client.on('data', (d) => {
      up.push(d);
      backend.write(d);
    });
    backend.on('data', (d) => {
      down.push(d);
      client.write(d);
    });
    const end = () => {
      client.destroy();
      backend.destroy();
    };
    client.on('close', end).on('error', end);
    backend.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    toBackend: () => Buffer.concat(up).toString('utf8'),
    fromBackend: () => Buffer.concat(down).toString('utf8'),
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
