// A recording TCP relay between the proxy and a backend's plaintext port: the tests read exactly
// what the backend received (e.g. that a deep stanza, or a legacy roster iq, never got there), and
// can break the connections through it (drop, freeze) as a network would.
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Tokenizer } from '../../src/stream/tokenizer.js';
import type { Stanza } from '../../src/stream/stanza.js';

export interface Capture {
  port: number;
  /** everything sent towards the backend, all connections, as text */
  toBackend(): string;
  /** everything the backend sent back */
  fromBackend(): string;
  /** every chunk in the order the relay passed it on, with when (performance.now()) and which way */
  timeline(): ReadonlyArray<{ at: number; toBackend: boolean; text: string }>;
  /** cut every current connection (as a network failure would), and go on accepting new ones */
  drop(): void;
  /** stop forwarding on every current connection without closing it (a half-open connection) */
  freeze(): void;
  stop(): Promise<void>;
}

export async function startCapture(host: string, port: number): Promise<Capture> {
  const up: Buffer[] = [];
  const down: Buffer[] = [];
  const sockets = new Set<net.Socket>();
  const timeline: Array<{ at: number; toBackend: boolean; text: string }> = [];
  // half-closes are passed on (a FIN after </stream:stream> must not cut the other side's answer)
  const server = net.createServer({ allowHalfOpen: true }, (client) => {
    const backend = net.connect({ host, port, allowHalfOpen: true });
    sockets.add(client).add(backend);
    client.on('data', (d) => {
      up.push(d);
      timeline.push({ at: performance.now(), toBackend: true, text: d.toString('utf8') });
      backend.write(d);
    });
    backend.on('data', (d) => {
      down.push(d);
      timeline.push({ at: performance.now(), toBackend: false, text: d.toString('utf8') });
      client.write(d);
    });
    client.on('end', () => backend.end());
    backend.on('end', () => client.end());
    const end = () => {
      client.destroy();
      backend.destroy();
    };
    client.on('error', end);
    backend.on('error', end);
    let closes = 0;
    const closed = () => {
      if (++closes === 2) end();
    };
    client.on('close', closed);
    backend.on('close', closed);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.address() as net.AddressInfo).port,
    toBackend: () => Buffer.concat(up).toString('utf8'),
    fromBackend: () => Buffer.concat(down).toString('utf8'),
    timeline: () => timeline,
    drop: () => {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    freeze: () => {
      for (const s of sockets) s.pause();
    },
    stop: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Every top-level element the proxy sent to the backend, parsed with the proxy's own tokenizer. */
export function upstreamElements(cap: Capture): Stanza[] {
  const out: Stanza[] = [];
  const bytes = Buffer.from(cap.toBackend(), 'utf8').toString('latin1');
  // the capture holds several connections' streams back to back: split at each stream header
  for (const part of bytes.split(/(?=<\?xml )/)) {
    if (!part.trim()) continue;
    const tk = new Tokenizer({ onStreamStart: () => undefined, onElement: (s) => out.push(s), onStreamEnd: () => undefined }, { maxSize: 1 << 24, maxDepth: 1000 });
    try {
      tk.write(part);
    } catch {
      /* a stream cut short by a closed connection */
    }
  }
  return out;
}
