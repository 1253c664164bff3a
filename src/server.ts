// Listeners and the set of live sessions: one Session per accepted client socket, the service
// account they share (--service-jid), and the shutdown that sends every client <system-shutdown/>
// before the process exits.
import net from 'node:net';
import tls from 'node:tls';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { defaultRules, type Rule } from './rules/index.js';
import { ServiceAccount } from './service/account.js';
import { Session, ruleTable, type RuleTable } from './session/session.js';

export interface ProxyOptions {
  config: Config;
  log: Logger;
  /** the rule table (default: defaultRules()) */
  rules?: Rule[];
}

/** The service account's polite close is bounded too (its socket is destroyed ~2 s later anyway). */
const SERVICE_CLOSE_MS = 500;

export class Proxy {
  readonly sessions = new Set<Session>();
  /** the service account, when --service-jid is configured */
  readonly service: ServiceAccount | undefined;
  private server: net.Server | undefined;
  private readonly rules: RuleTable;
  private readonly secureContext: tls.SecureContext | undefined;
  private readonly upstreamCa: Buffer | undefined;

  constructor(private readonly opts: ProxyOptions) {
    const { config } = opts;
    this.rules = ruleTable(opts.rules ?? defaultRules({ backend: config.backend, mucSweepInterval: config.mucSweepInterval, mucHistory: config.mucHistory, mucPrefix: config.mucPrefix, ...(config.pubsubService ? { pubsubService: config.pubsubService } : {}) }));
    this.secureContext =
      config.tlsCert && config.tlsKey
        ? tls.createSecureContext({ cert: readFileSync(config.tlsCert), key: readFileSync(config.tlsKey) })
        : undefined;
    this.upstreamCa = config.upstreamCa ? readFileSync(config.upstreamCa) : undefined;
    this.service =
      config.serviceJid && config.servicePassword
        ? new ServiceAccount({ config, jid: config.serviceJid, password: config.servicePassword, log: opts.log, ...(this.upstreamCa ? { upstreamCa: this.upstreamCa } : {}) })
        : undefined;
  }

  get log(): Logger {
    return this.opts.log;
  }

  /** Start listening; resolves with the bound address (port 0 picks a free port). */
  listen(): Promise<net.AddressInfo> {
    const { config, log } = this.opts;
    const server = net.createServer({ noDelay: true }, (socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: config.listen.host, port: config.listen.port, backlog: 1024 }, () => {
        server.off('error', reject);
        server.on('error', (err) => log.error({ err }, 'listener error'));
        const addr = server.address() as net.AddressInfo;
        log.info(
          {
            listen: `${addr.address}:${addr.port}`,
            upstream: `${config.upstream.tls ? 'tls' : 'tcp'}://${config.upstream.host}:${config.upstream.port}`,
            clientTls: this.secureContext ? (config.requireTls ? 'required' : 'offered') : 'none',
            ...(this.service ? { serviceAccount: this.service.bare } : {}),
          },
          'listening',
        );
        if (!this.secureContext) log.warn('no --tls-cert: clients connect in plaintext (fine for an in-pod sidecar, not on a network)');
        // not awaited: sessions (§3, §4) work without it; the account logs its failure and retries
        this.service?.start().catch(() => undefined);
        resolve(addr);
      });
    });
  }

  private accept(socket: net.Socket): void {
    const session = new Session(socket, {
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

  /**
   * Stop accepting, send <system-shutdown/> to every client, wait (bounded) for the sessions to end,
   * then close the service account (after the sessions: their onClose hooks may still use it).
   */
  async close(graceMs = 3000): Promise<void> {
    const server = this.server;
    this.server = undefined;
    const stopped = server ? new Promise<void>((resolve) => server.close(() => resolve())) : Promise.resolve();
    const all = Promise.all([...this.sessions].map((s) => s.shutdown()));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((resolve) => (timer = setTimeout(resolve, graceMs)))]);
    clearTimeout(timer);
    if (this.service) await Promise.race([this.service.close(), new Promise<void>((resolve) => (timer = setTimeout(resolve, SERVICE_CLOSE_MS)))]);
    clearTimeout(timer);
    await Promise.race([stopped, new Promise<void>((resolve) => setTimeout(resolve, 100))]);
  }
}

export async function startProxy(opts: ProxyOptions): Promise<{ proxy: Proxy; address: net.AddressInfo }> {
  const proxy = new Proxy(opts);
  const address = await proxy.listen();
  return { proxy, address };
}
