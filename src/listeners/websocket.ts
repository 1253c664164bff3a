// The WebSocket listener (RFC 7395, --listen-ws): an HTTP server (HTTPS with the certificate, so
// wss://) whose one path (--ws-path) upgrades to WebSocket with the `xmpp` subprotocol. Browsers drop
// a connection whose handshake does not name `xmpp`; a client that does not ask for it is refused
// (400), as is an Origin not in --ws-origin (403: a page on another site must not drive sessions
// from its visitors' browsers). A request without Origin is no browser's and is let through: the
// check protects browsers, and any other client can send whatever Origin it likes.
// Each connection is pinged every WS_PING_MS; one that has not answered the previous ping is cut.
import http from 'node:http';
import https from 'node:https';
import type net from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Endpoint } from '../config.js';

export interface WsAccepted {
  ws: WebSocket;
  remote: string;
  secure: boolean;
}

export interface WsListenerOptions {
  endpoint: Endpoint;
  path: string;
  /** allowed Origin values (absent: any) */
  origins?: readonly string[];
  /** certificate and key: wss */
  tls?: { cert: Buffer; key: Buffer };
  /** largest message ws accepts at all (bigger ones: close 1009 without reading them) */
  maxPayload: number;
  /** time for the HTTP upgrade request */
  headerTimeout: number;
  log: Logger;
  accept(conn: WsAccepted): void;
}

export interface WsListener {
  server: http.Server;
  close(): Promise<void>;
}

/** how often each WebSocket is pinged; no pong by the next ping ends it (TCP uses 60 s keepalives) */
export const WS_PING_MS = 30_000;

function refuse(socket: Duplex, status: number, reason: string): void {
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(reason)}\r\n\r\n${reason}`);
}

export function listenWebSocket(opts: WsListenerOptions): Promise<WsListener> {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: opts.maxPayload,
    perMessageDeflate: false, // compression of secrets next to attacker-chosen text leaks them (CRIME)
    handleProtocols: (protocols) => (protocols.has('xmpp') ? 'xmpp' : false),
  });
  const onRequest = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const onPath = new URL(req.url ?? '/', 'http://x').pathname === opts.path;
    res.writeHead(onPath ? 426 : 404, { 'Content-Type': 'text/plain', ...(onPath ? { Upgrade: 'websocket' } : {}) });
    res.end(onPath ? 'XMPP over WebSocket (RFC 7395): upgrade with subprotocol xmpp\n' : 'not found\n');
  };
  // the upgrade request gets --header-timeout; Node checks it only every connectionsCheckingInterval
  // (30 s by default) and only when given at construction
  const timeouts = { headersTimeout: opts.headerTimeout, requestTimeout: opts.headerTimeout, connectionsCheckingInterval: Math.min(1000, opts.headerTimeout) };
  const server = opts.tls ? https.createServer({ cert: opts.tls.cert, key: opts.tls.key, ...timeouts }, onRequest) : http.createServer(timeouts, onRequest);
  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    const peer = `${req.socket.remoteAddress}:${req.socket.remotePort}`;
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    if (path !== opts.path) return refuse(socket, 404, 'Not Found');
    const origin = req.headers.origin;
    if (opts.origins && origin !== undefined && !opts.origins.includes(origin)) {
      opts.log.info({ peer, origin }, 'WebSocket refused: origin not allowed');
      return refuse(socket, 403, 'Forbidden');
    }
    const protocols = (req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim());
    if (!protocols.includes('xmpp')) return refuse(socket, 400, 'Bad Request: subprotocol xmpp required');
    (socket as net.Socket).setNoDelay?.(true);
    wss.handleUpgrade(req, socket, head, (ws) => {
      alive.add(ws);
      ws.on('pong', () => alive.add(ws));
      opts.accept({ ws, remote: peer, secure: Boolean(opts.tls) });
    });
  });
  const alive = new WeakSet<WebSocket>();
  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (!alive.has(ws)) {
        ws.terminate();
        continue;
      }
      alive.delete(ws);
      ws.ping();
    }
  }, WS_PING_MS);
  heartbeat.unref();
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: opts.endpoint.host, port: opts.endpoint.port, backlog: 1024 }, () => {
      server.off('error', reject);
      server.on('error', (err) => opts.log.error({ err }, 'WebSocket listener error'));
      resolve({
        server,
        close: () =>
          new Promise<void>((res) => {
            clearInterval(heartbeat);
            server.close(() => res());
            server.closeIdleConnections?.();
          }),
      });
    });
  });
}
