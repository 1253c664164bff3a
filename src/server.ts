// Listeners and the set of live sessions: one Session per accepted client connection, whatever
// carries it (TCP with STARTTLS, direct TLS, WebSocket: listeners/), the service account they share
// (--service-jid), the admin listener (--admin-listen), the TLS certificate reload (SIGHUP), the
// trace list (--trace), and the shutdown: a drain (SIGTERM) that lets every session's contacts see
// it leave before its client gets <system-shutdown/>, or an immediate close.
import type net from 'node:net';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { traceJids, type Config } from './config.js';
import { listenTcp, type TcpAccepted } from './listeners/tcp.js';
import { listenWebSocket, type WsAccepted, type WsListener } from './listeners/websocket.js';
import { defaultRules, type Rule } from './rules/index.js';
import { ServiceAccount } from './service/account.js';
import { Session, ruleTable, type ClientTransport, type RuleTable, type SessionDeps } from './session/session.js';
import { RewriteTrace } from './session/rewrite-trace.js';
import { TcpFraming } from './stream/framing-tcp.js';
import { WsFraming } from './stream/framing-ws.js';
import { TlsCredentials } from './tls-credentials.js';
import { AdminServer } from './admin/server.js';
import { Metrics, type Bytes } from './admin/metrics.js';
import { ReadinessProbe, type Readiness } from './admin/ready.js';
import type { JID } from './xmpp/jid.js';

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
  /** the proxy's metrics, with an admin listener to serve them */
  readonly metrics: Metrics | undefined;
  /** where the admin listener listens, once listening */
  adminAddress: net.AddressInfo | undefined;
  /** the bound addresses of the client listeners, once listening */
  addresses: ListenAddresses | undefined;
  /** true from the start of a drain (SIGTERM): /readyz answers 503 */
  draining = false;
  private servers: net.Server[] = [];
  private ws: WsListener | undefined;
  private admin: AdminServer | undefined;
  private readonly rules: RuleTable;
  private readonly credentials: TlsCredentials | undefined;
  private readonly upstreamCa: Buffer | undefined;
  private readonly probe: ReadinessProbe;
  /** traced JIDs, canonical (bare: every resource of the user; full: that resource) */
  private readonly traces: Set<string>;
  /** bytes of the sessions that are gone (the live ones are added when scraped) */
  private readonly goneBytes: Bytes = { clientIn: 0, clientOut: 0, backendIn: 0, backendOut: 0 };

  constructor(private readonly opts: ProxyOptions) {
    const { config } = opts;
    this.rules = ruleTable(opts.rules ?? defaultRules({ backend: config.backend, mucSweepInterval: config.mucSweepInterval, mucHistory: config.mucHistory, mucPrefix: config.mucPrefix, ...(config.pubsubService ? { pubsubService: config.pubsubService } : {}) }));
    this.credentials = config.tlsCert && config.tlsKey ? new TlsCredentials(config.tlsCert, config.tlsKey) : undefined;
    this.traces = new Set(config.trace ?? []);
    // only when served: the default metrics observe GC and the event loop for the process's life
    this.metrics = config.adminListen ? new Metrics({ tally: { client: this.rules.client.tally, backend: this.rules.backend.tally }, bytes: () => this.bytes() }) : undefined;
    this.probe = new ReadinessProbe(config, config.serviceJid ? config.serviceJid.slice(config.serviceJid.indexOf('@') + 1) : 'localhost');
    this.upstreamCa = config.upstreamCa ? readFileSync(config.upstreamCa) : undefined;
    this.service =
      config.serviceJid && config.servicePassword
        ? new ServiceAccount({
            config,
            jid: config.serviceJid,
            password: config.servicePassword,
            log: opts.log,
            ...(this.upstreamCa ? { upstreamCa: this.upstreamCa } : {}),
            ...(this.metrics ? { onTimeout: () => this.metrics!.requestTimedOut('service') } : {}),
          })
        : undefined;
  }

  get log(): Logger {
    return this.opts.log;
  }

  /** Start listening; resolves with the main (--listen) address; `addresses` has them all. */
  async listen(): Promise<net.AddressInfo> {
    const { config, log } = this.opts;
    const common = { proxyProtocol: config.proxyProtocol, headerTimeout: config.headerTimeout, log };
    const credentials = this.credentials;
    try {
      const tcp = await named('--listen', listenTcp({ ...common, endpoint: config.listen, accept: (c) => this.acceptTcp(c) }));
      this.servers.push(tcp);
      const addresses: ListenAddresses = { tcp: tcp.address() as net.AddressInfo };
      if (config.listenTls) {
        if (!credentials) throw new Error('--listen-tls needs a certificate');
        // each connection takes the context of its moment: after a reload (SIGHUP), the new one
        const direct = await named('--listen-tls', listenTcp({ ...common, endpoint: config.listenTls, directTls: () => credentials.context, accept: (c) => this.acceptTcp(c) }));
        this.servers.push(direct);
        addresses.tls = direct.address() as net.AddressInfo;
      }
      if (config.listenWs) {
        const files = () => ({ cert: readFileSync(credentials!.certFile), key: readFileSync(credentials!.keyFile) });
        const ws = await named('--listen-ws', listenWebSocket({
          endpoint: config.listenWs,
          path: config.wsPath,
          ...(config.wsOrigins ? { origins: config.wsOrigins } : {}),
          ...(credentials ? { tls: files() } : {}),
          maxPayload: config.maxStanzaSize + WS_PAYLOAD_SLACK,
          headerTimeout: config.headerTimeout,
          log,
          accept: (c) => this.acceptWs(c),
        }));
        this.ws = ws;
        // wss: the HTTPS server takes the reloaded certificate for its next handshakes
        credentials?.onReload(() => (ws.server as unknown as { setSecureContext?(o: object): void }).setSecureContext?.(files()));
        addresses.ws = ws.server.address() as net.AddressInfo;
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
        ...(a.ws ? { listenWs: `${credentials ? 'wss' : 'ws'}://${at(a.ws)}${config.wsPath}` } : {}),
        ...(config.proxyProtocol ? { proxyProtocol: true } : {}),
        upstream: config.upstream.ws ?? `${config.upstream.tls ? 'tls' : 'tcp'}://${config.upstream.host}:${config.upstream.port}`,
        clientTls: credentials ? (config.requireTls ? 'required' : 'offered') : 'none',
        ...(this.service ? { serviceAccount: this.service.bare } : {}),
      },
      'listening',
    );
    if (!credentials) log.warn('no --tls-cert: clients connect in plaintext (fine for an in-pod sidecar, not on a network)');
    // not awaited: sessions (§3, §4) work without it; the account logs its failure and retries
    this.service?.start().catch(() => undefined);
    if (config.adminListen && this.metrics) {
      this.admin = new AdminServer({ metrics: this.metrics, host: this }, log);
      try {
        this.adminAddress = await this.admin.listen(config.adminListen);
      } catch (err) {
        await this.close(0);
        throw Object.assign(err as Error, { flag: '--admin-listen' });
      }
    }
    return a.tcp;
  }

  /** the client streams' limits: one object for every session */
  private limitsValue: { maxSize: number; maxDepth: number } | undefined;

  private limits() {
    return (this.limitsValue ??= Object.freeze({ maxSize: this.opts.config.maxStanzaSize, maxDepth: this.opts.config.maxDepth }));
  }

  private acceptTcp(c: TcpAccepted): void {
    this.accept({ framing: new TcpFraming(c.socket, this.limits()), remote: c.remote, secure: c.secure, ...(c.via ? { via: c.via } : {}) }, c.secure ? 'tls' : 'tcp');
  }

  private acceptWs(c: WsAccepted): void {
    this.accept({ framing: new WsFraming(c.ws, this.limits()), remote: c.remote, secure: c.secure }, 'ws');
  }

  /** `label`: the transport as metrics name it (tcp: STARTTLS or plaintext; tls: direct TLS; ws) */
  private accept(transport: ClientTransport, label: string): void {
    this.sessions.add(new Session(transport, this.sessionDeps(label)));
  }

  /** one SessionDeps per transport label, shared by its sessions (each session keeps a reference) */
  private readonly deps = new Map<string, SessionDeps>();

  private sessionDeps(label: string): SessionDeps {
    let deps = this.deps.get(label);
    if (!deps) {
      deps = {
        config: this.opts.config,
        rules: this.rules,
        log: this.opts.log,
        ...(this.credentials ? { credentials: this.credentials } : {}),
        ...(this.upstreamCa ? { upstreamCa: this.upstreamCa } : {}),
        ...(this.service ? { service: this.service } : {}),
        transport: label,
        ...(this.metrics ? { meter: this.metrics } : {}),
        traceOf: (jid, log) => this.traceOf(jid, log),
        onGone: (s) => this.gone(s),
      };
      this.deps.set(label, deps);
    }
    return deps;
  }

  private gone(s: Session): void {
    this.sessions.delete(s);
    const b = s.bytes;
    this.goneBytes.clientIn += b.clientIn;
    this.goneBytes.clientOut += b.clientOut;
    this.goneBytes.backendIn += b.backendIn;
    this.goneBytes.backendOut += b.backendOut;
  }

  private bytes(): Bytes {
    const sum = { ...this.goneBytes };
    for (const s of this.sessions) {
      const b = s.bytes;
      sum.clientIn += b.clientIn;
      sum.clientOut += b.clientOut;
      sum.backendIn += b.backendIn;
      sum.backendOut += b.backendOut;
    }
    return sum;
  }

  /** /readyz: the backend answers a stream header now */
  ready(): Promise<Readiness> {
    return this.probe.check();
  }

  // ---- trace (--trace, POST/DELETE /trace/<jid>) ----

  traced(): string[] {
    return [...this.traces].sort();
  }

  private traceOf(jid: JID, log: Logger): RewriteTrace | undefined {
    if (this.traces.size === 0) return undefined;
    const full = jid.toString();
    const bare = jid.bare().toString();
    const match = this.traces.has(full) ? full : this.traces.has(bare) ? bare : undefined;
    return match === undefined ? undefined : new RewriteTrace(log, match);
  }

  /** Trace `jid` (on) or stop; the user's sessions already bound follow at once. */
  setTrace(jid: string, on: boolean): boolean {
    const canonical = traceJids(jid)[0]!;
    const changed = on ? !this.traces.has(canonical) : this.traces.delete(canonical);
    if (on) this.traces.add(canonical);
    if (changed) {
      for (const s of this.sessions) {
        const j = s.jid;
        if (j) s.setTrace(this.traceOf(j, s.log));
      }
    }
    return changed;
  }

  // ---- SIGHUP ----

  /**
   * Read --tls-cert and --tls-key again: connections that start TLS from now on get them, sessions
   * already encrypted go on. Throws (the old certificate stays) if the files do not make a context.
   */
  reloadTls(): boolean {
    if (!this.credentials) return false;
    this.credentials.reload();
    this.log.info({ cert: this.credentials.certFile }, 'TLS certificate reloaded');
    return true;
  }

  // ---- shutdown ----

  /**
   * SIGTERM: stop accepting, /readyz 503; every bound session publishes its unavailability (its
   * rules' close: presence, rooms, markers) while its client is still connected, then the client
   * gets <system-shutdown/>, then the session's backend requests in flight get until the deadline.
   * Whatever is left when `timeoutMs` is over is cut. Then the service account and the admin listener.
   */
  async drain(timeoutMs = this.opts.config.drainTimeout): Promise<void> {
    const started = Date.now();
    const deadline = started + timeoutMs;
    this.draining = true;
    this.metrics?.draining.set(1);
    const stopped = this.stopListening();
    const all = Promise.all([...this.sessions].map((s) => s.drain(deadline)));
    let timer: NodeJS.Timeout | undefined;
    // a little after the deadline: the sessions' own deadline closes their streams (~2 s more for a
    // peer that does not answer </stream:stream>, XmlStream)
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs + 500)))]);
    clearTimeout(timer);
    const left = this.sessions.size;
    if (left > 0) {
      this.log.warn({ sessions: left }, 'drain time-out: cutting the remaining sessions');
      for (const s of this.sessions) void s.shutdown();
    }
    this.log.info({ ms: Date.now() - started }, 'drained');
    await this.closeRest(stopped);
  }

  /** After the sessions: the service account (their close may still use it), the admin listener. */
  private async closeRest(stopped: Promise<void>): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    if (this.service) await Promise.race([this.service.close(), new Promise<void>((resolve) => (timer = setTimeout(resolve, SERVICE_CLOSE_MS)))]);
    clearTimeout(timer);
    await this.admin?.close();
    this.admin = undefined;
    await Promise.race([stopped, new Promise<void>((resolve) => setTimeout(resolve, 100))]);
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
    await this.closeRest(stopped);
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
