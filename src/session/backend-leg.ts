// The proxy's connection to the backend for one client: connect (TCP, direct TLS, or WebSocket for a
// backend reachable only that way), open the stream to the client's domain, STARTTLS when offered
// (per --upstream-tls; TCP only), and restart after SASL success.
// After that it is a pipe of elements; the session decides what they mean.
import net from 'node:net';
import tls from 'node:tls';
import type { Element } from 'ltx';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { XmlStream, type StreamEvents } from '../stream/connection.js';
import { WebSocket, type ClientOptions } from 'ws';
import { TcpFraming } from '../stream/framing-tcp.js';
import { WsFraming } from '../stream/framing-ws.js';
import { StreamError, isStreamErrorCondition, type StreamErrorCondition } from '../stream/errors.js';
import type { Stanza } from '../stream/stanza.js';
import { ownString } from '../stream/chars.js';
import { NS_STREAMS, NS_TLS } from '../xmpp/ns.js';
import { hasStartTls } from './features.js';

export type LegEnd =
  | { kind: 'stream-error'; condition: StreamErrorCondition; text?: string }
  | { kind: 'closed' }
  | { kind: 'lost'; error?: Error };

export interface BackendLegEvents {
  onBackendElement(s: Stanza): void;
  /** the backend ended the stream or the connection failed (not called after our own close()) */
  onBackendEnd(end: LegEnd): void;
  /** the socket is closed, whoever closed it (called once, also when connecting failed) */
  onBackendGone(): void;
  onBackendBackpressure(full: boolean): void;
}

/** Why opening the backend leg failed: becomes remote-connection-failed (or the backend's own error). */
export class BackendUnavailable extends Error {
  constructor(
    message: string,
    readonly condition: StreamErrorCondition = 'remote-connection-failed',
  ) {
    super(message);
    this.name = 'BackendUnavailable';
  }
}

interface Waiter {
  match(s: Stanza): boolean;
  resolve(s: Stanza): void;
  reject(err: Error): void;
}

/** Backend stanzas are trusted more than a client's but still bounded. */
const UPSTREAM_MAX_SIZE = 16 * 1024 * 1024;
const UPSTREAM_MAX_DEPTH = 4096;
const UPSTREAM_LIMITS = { maxSize: UPSTREAM_MAX_SIZE, maxDepth: UPSTREAM_MAX_DEPTH };

const LEG = Symbol('xep207.backendLeg');
type LegSocket = net.Socket & { [LEG]?: BackendLeg };

/** 'close' of the leg's TCP socket (emitted once) */
function legSocketClosed(this: LegSocket): void {
  const leg = this[LEG];
  this[LEG] = undefined;
  leg?.socketGone();
}

export class BackendLeg implements StreamEvents {
  stream: XmlStream | undefined;
  private framing: TcpFraming | undefined;
  features: Element | undefined;
  /** the backend's stream id (for logs) */
  streamId: string | undefined;
  secure = false;
  private waiter: Waiter | undefined;
  private ended = false;

  constructor(
    private readonly config: Config,
    private readonly domain: string,
    private readonly lang: string,
    private readonly events: BackendLegEvents,
    private readonly log: Logger,
    private readonly tlsOptions: { ca?: Buffer },
  ) {}

  /** Connect and negotiate up to the pre-authentication features; resolves with them. */
  async open(): Promise<Element> {
    const { host, port, tls: direct, ws: wsUrl } = this.config.upstream;
    const deadline = setTimeout(() => this.fail(new BackendUnavailable(`backend did not open a stream within ${this.config.connectTimeout} ms`)), this.config.connectTimeout);
    try {
      if (wsUrl) {
        const ws = await this.connectWs(wsUrl);
        this.secure = direct;
        this.stream = new XmlStream(new WsFraming(ws, UPSTREAM_LIMITS), this);
        this.features = await this.openStream();
        return this.features;
      }
      const socket = await this.connect(host, port, direct);
      this.secure = direct;
      this.framing = new TcpFraming(socket, UPSTREAM_LIMITS);
      this.stream = new XmlStream(this.framing, this);
      let features = await this.openStream();
      if (!direct && this.config.upstreamTls !== 'off') {
        if (hasStartTls(features)) {
          features = await this.startTls();
        } else if (this.config.upstreamTls === 'require') {
          throw new BackendUnavailable('backend does not offer STARTTLS (--upstream-tls require)');
        }
      }
      this.features = features;
      return features;
    } finally {
      clearTimeout(deadline);
    }
  }

  private connect(host: string, port: number, direct: boolean): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(new BackendUnavailable(`cannot reach backend ${host}:${port}: ${err.message}`));
      const socket: net.Socket = direct
        ? tls.connect({ host, port, servername: this.domain, ...this.verifyOptions() }, () => {
            socket.off('error', onError);
            resolve(socket);
          })
        : net.connect({ host, port }, () => {
            socket.off('error', onError);
            resolve(socket);
          });
      socket.once('error', onError);
      // a TLS socket on top closes this one too; a shared listener finds its leg on the socket (a
      // `once` wrapper and a closure would stay with every idle session)
      (socket as LegSocket)[LEG] = this;
      socket.on('close', legSocketClosed);
      socket.setNoDelay(true);
      socket.setKeepAlive(true, 60_000);
      this.pendingSocket = socket;
    });
  }

  /** the TCP socket is closed (legSocketClosed) */
  socketGone(): void {
    this.events.onBackendGone();
  }

  /** the socket while connecting, so that a deadline can destroy it */
  private pendingSocket: net.Socket | undefined;
  private pendingWs: WebSocket | undefined;

  /**
   * RFC 7395 to the backend: subprotocol xmpp (ws rejects an answer without it), no compression,
   * the certificate verified for the client's domain as on the other upstreams.
   */
  private connectWs(url: string): Promise<WebSocket> {
    return new Promise((resolve, reject) => {
      const options = {
        servername: this.domain, // ws hands it to tls.connect
        ...this.verifyOptions(),
        perMessageDeflate: false,
        maxPayload: UPSTREAM_MAX_SIZE,
        handshakeTimeout: this.config.connectTimeout,
      } as ClientOptions;
      const ws = new WebSocket(url, 'xmpp', options);
      const onError = (err: Error) => reject(new BackendUnavailable(`cannot reach backend ${url}: ${err.message}`));
      ws.once('open', () => {
        ws.off('error', onError);
        resolve(ws);
      });
      ws.once('error', onError);
      ws.once('unexpected-response', (_req, res) => {
        reject(new BackendUnavailable(`backend ${url} answered the WebSocket handshake with HTTP ${res.statusCode}`));
        ws.terminate();
      });
      ws.once('close', () => this.events.onBackendGone());
      this.pendingWs = ws;
    });
  }

  private verifyOptions(): tls.ConnectionOptions {
    return { rejectUnauthorized: !this.config.upstreamInsecure, ...(this.tlsOptions.ca ? { ca: this.tlsOptions.ca } : {}) };
  }

  private sendHeader(): void {
    this.stream!.sendHeader({ to: this.domain, version: '1.0', 'xml:lang': this.lang });
  }

  private openStream(): Promise<Element> {
    const features = this.expect((s) => s.name === 'stream:features' || s.name === 'features');
    this.sendHeader();
    return features.then((s) => s.el);
  }

  private async startTls(): Promise<Element> {
    const answer = this.expect((s) => s.attrs.xmlns === NS_TLS && (s.name === 'proceed' || s.name === 'failure'));
    this.stream!.sendRaw(`<starttls xmlns='${NS_TLS}'/>`);
    const s = await answer;
    if (s.name !== 'proceed') throw new BackendUnavailable('backend refused STARTTLS');
    await new Promise<void>((resolve, reject) => {
      this.stream!.upgrade((plain) => {
        const secure = tls.connect({ socket: plain, servername: this.domain, ...this.verifyOptions() }, () => resolve());
        secure.once('error', (err) => reject(new BackendUnavailable(`TLS with the backend failed: ${err.message}`)));
        return secure;
      });
    });
    this.secure = true;
    this.log.debug({ protocol: (this.framing!.socket as tls.TLSSocket).getProtocol?.() }, 'backend TLS established');
    return this.openStream();
  }

  /** After SASL success: a new stream on the same connection; resolves with the new features. */
  async restart(): Promise<Element> {
    this.stream!.restart();
    const features = await this.openStream();
    this.features = features;
    return features;
  }

  send(el: Element): void {
    this.stream?.send(el);
  }

  sendRaw(bytes: string): void {
    this.stream?.sendRaw(bytes);
  }

  /** Close our stream politely (the backend then closes its side). */
  close(): void {
    this.ended = true;
    if (this.waiter) this.rejectWaiter(new BackendUnavailable('closing'));
    if (this.stream) this.stream.close();
    else {
      this.pendingSocket?.destroy();
      this.pendingWs?.terminate();
    }
  }

  /**
   * The next element that matches (the others go to onBackendElement meanwhile): one at a time. It
   * rejects with BackendUnavailable if the stream ends first. The service account's login uses it too.
   */
  expect(match: (s: Stanza) => boolean): Promise<Stanza> {
    return new Promise((resolve, reject) => {
      this.waiter = { match, resolve, reject };
    });
  }

  private rejectWaiter(err: Error): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(err);
  }

  private fail(err: Error): void {
    this.rejectWaiter(err);
    this.ended = true;
    if (this.stream) this.stream.destroy();
    else {
      this.pendingSocket?.destroy(err); // rejects the pending connect
      this.pendingWs?.terminate();
    }
  }

  // ---- the stream's events ----

  onStreamStart(_name: string, attrs: Record<string, string>): void {
    // a copy: the header's attributes are slices of the chunk it came in (features included)
    this.streamId = attrs.id === undefined ? undefined : ownString(attrs.id);
    if (attrs.xmlns !== 'jabber:client') this.fail(new BackendUnavailable(`backend stream has namespace '${attrs.xmlns}'`));
  }

  onElement(s: Stanza): void {
    if (s.name === 'stream:error' || s.name === 'error') {
      const el = s.el;
      const cond = el.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text');
      const text = el.getChildText('text', NS_STREAMS) ?? undefined;
      const condition = cond && isStreamErrorCondition(cond.name) ? cond.name : 'undefined-condition';
      this.end({ kind: 'stream-error', condition, ...(text ? { text } : {}) });
      return;
    }
    const w = this.waiter;
    if (w && w.match(s)) {
      this.waiter = undefined;
      w.resolve(s);
      return;
    }
    this.events.onBackendElement(s);
  }

  onStreamEnd(): void {
    this.end({ kind: 'closed' });
  }

  onClose(err?: Error): void {
    this.end({ kind: 'lost', ...(err ? { error: err } : {}) });
  }

  onBackpressure(full: boolean): void {
    this.events.onBackendBackpressure(full);
  }

  onViolation(err: StreamError): void {
    this.log.warn({ err: err.message }, 'backend sent bad XML');
    this.stream?.error(err.condition, err.text);
    this.end({ kind: 'stream-error', condition: 'internal-server-error', text: 'the backend sent XML the proxy cannot accept' });
  }

  private end(end: LegEnd): void {
    const wasWaiting = this.waiter !== undefined;
    if (wasWaiting) {
      const reason =
        end.kind === 'stream-error'
          ? new BackendUnavailable(`backend stream error: ${end.condition}${end.text ? ` (${end.text})` : ''}`, end.condition)
          : new BackendUnavailable(end.kind === 'lost' && end.error ? `backend connection failed: ${end.error.message}` : 'backend closed the stream');
      this.rejectWaiter(reason);
    }
    if (end.kind !== 'lost') this.stream?.close();
    if (this.ended) return;
    this.ended = true;
    if (!wasWaiting) this.events.onBackendEnd(end);
  }
}
