// The TCP listeners: plain c2s (--listen: STARTTLS offered with a certificate) and direct TLS
// (--listen-tls, XEP-0368: TLS from the first byte, same certificate). With --proxy-protocol each
// connection first carries a PROXY header from the load balancer, before TLS; the address in it is
// the client's for logs.
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { Endpoint } from '../config.js';
import { readProxyHeader } from '../stream/proxy-protocol.js';

export interface TcpAccepted {
  socket: net.Socket;
  /** the client's `host:port` (the PROXY header's when there is one) */
  remote: string;
  /** the balancer's `host:port`, when a PROXY header named the client */
  via?: string;
  secure: boolean;
}

export interface TcpListenerOptions {
  endpoint: Endpoint;
  /** direct TLS (XEP-0368): the context for each new connection (the current one after a reload) */
  directTls?: () => tls.SecureContext;
  proxyProtocol: boolean;
  /** how long the PROXY header may take */
  headerTimeout: number;
  log: Logger;
  accept(conn: TcpAccepted): void;
}

/** ALPN name of XMPP client connections (XEP-0368 §4) */
const ALPN = ['xmpp-client'];

function hostPort(address: string | undefined, port: number | undefined): string {
  return address && address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

export function listenTcp(opts: TcpListenerOptions): Promise<net.Server> {
  const server = net.createServer({ noDelay: true }, (socket) => {
    socket.setNoDelay(true);
    socket.setKeepAlive(true, 60_000);
    const peer = hostPort(socket.remoteAddress, socket.remotePort);
    if (!opts.proxyProtocol) return ready(socket, peer);
    readProxyHeader(socket, opts.headerTimeout).then(
      (source) => ready(socket, source ? hostPort(source.address, source.port) : peer, source ? peer : undefined),
      (err: Error) => {
        opts.log.warn({ peer, reason: err.message }, 'connection refused: no valid PROXY protocol header');
        socket.destroy();
      },
    );
  });
  const ready = (plain: net.Socket, remote: string, via?: string) => {
    const socket = opts.directTls ? new tls.TLSSocket(plain, { isServer: true, secureContext: opts.directTls(), ALPNProtocols: ALPN }) : plain;
    opts.accept({ socket, remote, secure: Boolean(opts.directTls), ...(via ? { via } : {}) });
    if (!opts.directTls) plain.resume(); // left paused by readProxyHeader; a TLS socket reads by itself
  };
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.endpoint.host, port: opts.endpoint.port, backlog: 1024 }, () => {
      server.off('error', reject);
      server.on('error', (err) => opts.log.error({ err }, 'listener error'));
      resolve(server);
    });
  });
}
