// The admin HTTP listener (--admin-listen): what an orchestrator and an operator ask a running proxy.
//   GET  /healthz          200 while the process serves (liveness)
//   GET  /readyz           200 when the backend answers a stream header now, 503 otherwise or while draining
//   GET  /metrics          Prometheus text format
//   GET  /trace            the traced JIDs
//   POST /trace/<jid>      trace that user (bare JID) or resource (full JID) from now on
//   DELETE /trace/<jid>    stop
// Changing the trace is accepted from loopback peers only: in a pod the listener must be reachable
// from the kubelet and Prometheus, but what a user does should be logged only on the operator's
// word (kubectl exec / port-forward arrive from loopback).
import http from 'node:http';
import type net from 'node:net';
import type { Logger } from 'pino';
import type { Endpoint } from '../config.js';
import type { Metrics } from './metrics.js';
import type { Readiness } from './ready.js';

export interface AdminHost {
  readonly draining: boolean;
  ready(): Promise<Readiness>;
  traced(): string[];
  /** start (on) or stop tracing `jid`; returns false when nothing changed; throws ConfigError for a bad JID */
  setTrace(jid: string, on: boolean): boolean;
}

function isLoopback(address: string | undefined): boolean {
  return address !== undefined && (address === '::1' || address.startsWith('127.') || address.startsWith('::ffff:127.'));
}

function send(res: http.ServerResponse, status: number, body: unknown, type = 'application/json'): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body) + '\n';
  res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

export class AdminServer {
  private server: http.Server | undefined;

  private readonly host: AdminHost;
  private readonly metrics: Metrics;

  constructor(
    serves: { host: AdminHost; metrics: Metrics },
    private readonly log: Logger,
  ) {
    this.host = serves.host;
    this.metrics = serves.metrics;
  }

  listen(at: Endpoint): Promise<net.AddressInfo> {
    const server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        this.log.error({ err, path: req.url }, 'admin request failed');
        if (!res.headersSent) send(res, 500, { error: 'internal error' });
      });
    });
    // an admin endpoint answers at once or not at all; a stuck client must not hold a socket
    server.requestTimeout = 10_000;
    server.headersTimeout = 5_000;
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: at.host, port: at.port }, () => {
        server.off('error', reject);
        server.on('error', (err) => this.log.error({ err }, 'admin listener error'));
        const addr = server.address() as net.AddressInfo;
        this.log.info({ admin: `${addr.address}:${addr.port}` }, 'admin listening');
        resolve(addr);
      });
    });
  }

  close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return Promise.resolve();
    return new Promise((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0]!;
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    if (path === '/healthz' || path === '/readyz' || path === '/metrics') {
      if (!get) return send(res, 405, { error: 'method not allowed' });
      if (path === '/healthz') return send(res, 200, 'ok\n', 'text/plain; charset=utf-8');
      if (path === '/metrics') return send(res, 200, await this.metrics.text(), this.metrics.contentType);
      if (this.host.draining) return send(res, 503, { ready: false, reason: 'draining' });
      const r = await this.host.ready();
      return send(res, r.ready ? 200 : 503, r);
    }
    if (path === '/trace' && get) return send(res, 200, { trace: this.host.traced() });
    if (path.startsWith('/trace/')) {
      if (method !== 'POST' && method !== 'DELETE') return send(res, 405, { error: 'method not allowed' });
      if (!isLoopback(req.socket.remoteAddress)) return send(res, 403, { error: 'trace changes are accepted from loopback only' });
      let jid: string;
      try {
        jid = decodeURIComponent(path.slice('/trace/'.length));
      } catch {
        return send(res, 400, { error: 'bad JID' });
      }
      let changed: boolean;
      try {
        changed = this.host.setTrace(jid, method === 'POST');
      } catch (err) {
        return send(res, 400, { error: (err as Error).message });
      }
      this.log.info({ jid, trace: method === 'POST' }, changed ? 'trace changed' : 'trace unchanged');
      if (method === 'DELETE' && !changed) return send(res, 404, { error: 'not traced', trace: this.host.traced() });
      return send(res, 200, { trace: this.host.traced() });
    }
    return send(res, 404, { error: 'not found' });
  }
}
