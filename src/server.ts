// Listeners and the set of live sessions: one Session per accepted client connection, whatever
// carries it (TCP with STARTTLS, direct TLS, WebSocket: listeners/), the service account they share
// (--service-jid), and the shutdown that sends every client <system-shutdown/> before the process
// exits.
import type net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { listenTcp, type TcpAccepted } from './listeners/tcp.js';
import { listenWebSocket, type WsAccepted, type WsListener } from './listeners/websocket.js';
import { defaultRules, type Rule } from './rules/index.js';
import { ServiceAccount } from './service/account.js';
import { Session, ruleTable, type ClientTransport, type RuleTable } from './session/session.js';
import { TcpFraming } from './stream/framing-tcp.js';
import { WsFraming } from './stream/framing-ws.js';

export interface ProxyOptions {
  config: Config;
  log: Logger;
  /** the rule table (default: defaultRules()) */
  rules?: Rule[];
}

/** The service account's polite close is bounded too (its socket is destroyed ~2 s later anyway). */
const SERVICE_CLOSE_MS = 500;

/**
 * ws reads a whole message before handing it over, so the stanza limit cannot be checked while it
 * arrives: messages up to this much over --max-stanza-size are read and refused with
 * <policy-violation/>; bigger ones ws refuses unread (close code 1009), which bounds the memory.
 */
const WS_PAYLOAD_SLACK = 64 * 1024;

/** Where the listeners ended up (port 0 picks a free port). */
export interface ListenAddresses {
  tcp: net.AddressInfo;
  tls?: net.AddressInfo;
  ws?: net.AddressInfo;
}

export class Proxy {
  readonly sessions = new Set<Session>();
  /** the service account, when --service-jid is configured */
  readonly service: ServiceAccount | undefined;
  private servers: net.Server[] = [];
  private ws: WsListener | undefined;
  /** the bound addresses, once listening */
  addresses: ListenAddresses | undefined;
  private readonly rules: RuleTable;
  private readonly tlsFiles: { cert: Buffer; key: Buffer } | undefined;
  private readonly secureContext: tls.SecureContext | undefined;
  private readonly upstreamCa: Buffer | undefined;

  constructor(private readonly opts: ProxyOptions) {
    const { config } = opts;
    this.rules = ruleTable(opts.rules ?? defaultRules({ backend: config.backend, mucSweepInterval: config.mucSweepInterval, mucHistory: config.mucHistory, ...(config.pubsubService ? { pubsubService: config.pubsubService } : {}) }));
    this.tlsFiles = config.tlsCert && config.tlsKey ? { cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) } : undefined;
    this.secureContext = this.tlsFiles ? tls.createSecureContext(this.tlsFiles) : undefined;
    this.upstreamCa = config.upstreamCa ? readFileSync(config.upstreamCa) : undefined;
    this.service =
      config.serviceJid && config.servicePassword
        ? new ServiceAccount({ config, jid: config.serviceJid, password: config.servicePassword, log: opts.log, ...(this.upstreamCa ? { upstreamCa: this.upstreamCa } : {}) })
        : undefined;
  }

  get log(): Logger {
    return this.opts.log;
  }

  /** Start listening; resolves with the main (--listen) address; `addresses` has them all. */
  async listen(): Promise<net.AddressInfo> {
    const { config, log } = this.opts;
    const common = { proxyProtocol: config.proxyProtocol, headerTimeout: config.headerTimeout, log };
    try {
      const tcp = await named('--listen', listenTcp({ ...common, endpoint: config.listen, accept: (c) => this.acceptTcp(c) }));
      this.servers.push(tcp);
      const addresses: ListenAddresses = { tcp: tcp.address() as net.AddressInfo };
      if (config.listenTls) {
        if (!this.secureContext) throw new Error('--listen-tls needs a certificate');
        const direct = await named('--listen-tls', listenTcp({ ...common, endpoint: config.listenTls, directTls: this.secureContext, accept: (c) => this.acceptTcp(c) }));
        this.servers.push(direct);
        addresses.tls = direct.address() as net.AddressInfo;
      }
      if (config.listenWs) {
        this.ws = await named('--listen-ws', listenWebSocket({
          endpoint: config.listenWs,
          path: config.wsPath,
          ...(config.wsOrigins ? { origins: config.wsOrigins } : {}),
          ...(this.tlsFiles ? { tls: this.tlsFiles } : {}),
          maxPayload: config.maxStanzaSize + WS_PAYLOAD_SLACK,
          headerTimeout: config.headerTimeout,
          log,
          accept: (c) => this.acceptWs(c),
        }));
        addresses.ws = this.ws.server.address() as net.AddressInfo;
      }
      this.addresses = addresses;
    } catch (err) {
      await this.stopListening();
      throw err;
    }
    const a = this.addresses;
    const at = (x: net.AddressInfo) => `${x.address}:${x.port}`;
    log.info(
      {
        listen: at(a.tcp),
        ...(a.tls ? { listenTls: at(a.tls) } : {}),
        ...(a.ws ? { listenWs: `${this.tlsFiles ? 'wss' : 'ws'}://${at(a.ws)}${config.wsPath}` } : {}),
        ...(config.proxyProtocol ? { proxyProtocol: true } : {}),
        upstream: config.upstream.ws ?? `${config.upstream.tls ? 'tls' : 'tcp'}://${config.upstream.host}:${config.upstream.port}`,
        clientTls: this.secureContext ? (config.requireTls ? 'required' : 'offered') : 'none',
        ...(this.service ? { serviceAccount: this.service.bare } : {}),
      },
      'listening',
    );
    if (!this.secureContext) log.warn('no --tls-cert: clients connect in plaintext (fine for an in-pod sidecar, not on a network)');
    // not awaited: sessions (§3, §4) work without it; the account logs its failure and retries
    this.service?.start().catch(() => undefined);
    return a.tcp;
  }

  private limits() {
    return { maxSize: this.opts.config.maxStanzaSize, maxDepth: this.opts.config.maxDepth };
  }

  private acceptTcp(c: TcpAccepted): void {
    this.accept({ framing: new TcpFraming(c.socket, this.limits()), remote: c.remote, secure: c.secure, ...(c.via ? { via: c.via } : {}) });
  }

  private acceptWs(c: WsAccepted): void {
    this.accept({ framing: new WsFraming(c.ws, this.limits()), remote: c.remote, secure: c.secure });
  }

  private accept(transport: ClientTransport): void {
    const session = new Session(transport, {
      config: this.opts.config,
      rules: this.rules,
      log: this.opts.log,
      ...(this.secureContext ? { secureContext: this.secureContext } : {}),
      ...(this.upstreamCa ? { upstreamCa: this.upstreamCa } : {}),
      ...(this.service ? { service: this.service } : {}),
      onGone: (s) => this.sessions.delete(s),
    });
    this.sessions.add(session);
  }

  private stopListening(): Promise<void> {
    const servers = this.servers;
    this.servers = [];
    const ws = this.ws;
    this.ws = undefined;
    return Promise.all([...servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))), ws?.close()]).then(() => undefined);
  }

  /**
   * Stop accepting, send <system-shutdown/> to every client, wait (bounded) for the sessions to end,
   * then close the service account (after the sessions: their onClose hooks may still use it).
   */
  async close(graceMs = 3000): Promise<void> {
    const stopped = this.stopListening();
    const all = Promise.all([...this.sessions].map((s) => s.shutdown()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    if (this.service) await Promise.race([this.service.close(), new Promise<void>((resolve) => (timer = setTimeout(resolve, SERVICE_CLOSE_MS)))]);
    clearTimeout(timer);
    await Promise.race([stopped, new Promise<void>((resolve) => setTimeout(resolve, 100))]);
  }
}

/** A failure to listen (EADDRINUSE...) names the flag of that listener, for the CLI's one-line error. */
function named<T>(flag: string, listening: Promise<T>): Promise<T> {
  return listening.catch((err: NodeJS.ErrnoException & { flag?: string }) => {
    err.flag = flag;
    throw err;
  });
}

export async function startProxy(opts: ProxyOptions): Promise<{ proxy: Proxy; address: net.AddressInfo }> {
  const proxy = new Proxy(opts);
  const address = await proxy.listen();
  return { proxy, address };
}
