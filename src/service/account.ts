// The proxy's own account on the backend (--service-jid): one long-lived connection, shared by
// every session, that creates and owns nodes on pubsub components for users who may never have
// logged in (Prosody lets only a component's admins create nodes there, BACKENDS.md).
//
// Policy:
// - start() settles with the first attempt: it resolves once logged in, or rejects with why the
//   attempt failed (within --connect-timeout plus --request-timeout); either way the account keeps
//   (re)connecting in the background until close().
// - A lost connection (socket, stream error, unanswered keepalive) is re-established after a delay
//   of min(30 s, 1 s * 2^n), less up to half of it at random (n = failed attempts since the last
//   login), so that the instances of a restarted backend's proxies do not all come back at once.
// - A request made while disconnected waits for the next login, within its own time-out
//   ('remote-server-timeout' after). Requests in flight on a lost connection fail at once with
//   'remote-server-timeout' (connection.ts says why). While the backend refuses the login (a wrong
//   password: a configuration error), requests fail at once with 'internal-server-error' (RFC 6120
//   §8.3.3.8, "a misconfiguration") instead of waiting for a login that will not come by itself;
//   the attempts go on, in case the account is created or its password changed on the backend.
// - After close(), requests fail with 'service-unavailable'.
import { randomBytes } from 'node:crypto';
import type { Element } from 'ltx';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { ServiceRequester } from '../rules/types.js';
import { parseJid } from '../xmpp/jid.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import { ServiceConnection } from './connection.js';
import { LoginRefused, type Credentials } from './login.js';

export type ServiceState = 'idle' | 'connecting' | 'ready' | 'down' | 'closed';

export interface Backoff {
  baseMs: number;
  capMs: number;
}

export const RECONNECT: Backoff = { baseMs: 1000, capMs: 30_000 };

/** Silence after which the connection is pinged (a minute: far below TCP's own ~11 min detection). */
export const KEEPALIVE_MS = 60_000;

export interface ServiceAccountOptions {
  /** upstream, its TLS settings and the time-outs: the same as the client sessions' */
  config: Config;
  /** a bare JID with a localpart */
  jid: string;
  password: string;
  log: Logger;
  /** --upstream-ca, already read */
  upstreamCa?: Buffer;
  /** reconnection delays (tests shorten them) */
  backoff?: Backoff;
  keepaliveMs?: number;
  /** a request got no answer in time, on the connection or waiting for one (metrics) */
  onTimeout?(): void;
}

interface Waiting {
  iq: Element;
  deadline: number;
  timer: NodeJS.Timeout;
  resolve(el: Element): void;
  reject(err: Error): void;
}

export class ServiceAccount implements ServiceRequester {
  readonly bare: string;
  /**
   * Every stanza the account receives that answers none of its requests (notifications, presence,
   * messages, iq requests). Return true for an iq get/set it has answered; any other iq get/set is
   * answered service-unavailable (RFC 6120 §8.2.3), except the server's pings (answered).
   */
  onStanza: ((el: Element) => boolean | void) | undefined;
  private readonly log: Logger;
  private readonly domain: string;
  private readonly creds: Credentials;
  /** one per proxy instance, kept across reconnections: instances sharing the account do not collide */
  private readonly resource = `xep207-proxy-${randomBytes(6).toString('base64url')}`;
  private stateValue: ServiceState = 'idle';
  private conn: ServiceConnection | undefined;
  private boundJid: string | undefined;
  private readonly waiting = new Set<Waiting>();
  /** why the last attempt failed (for requests that time out waiting, and to log each reason once) */
  private lastFailure: string | undefined;
  /** the backend refuses the login: requests fail at once */
  private refused: string | undefined;
  private started: Promise<void> | undefined;
  private settleStart: ((err?: Error) => void) | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly opts: ServiceAccountOptions) {
    const jid = parseJid(opts.jid);
    if (!jid?.local || jid.resource) throw new Error(`the service account needs a bare JID with a localpart, got '${opts.jid}'`);
    this.bare = jid.toString();
    this.domain = jid.domain;
    this.creds = { local: jid.local, password: opts.password };
    this.log = opts.log.child({ service: this.bare });
  }

  /** The bound full JID (the bare JID until the first login). */
  get jid(): string {
    return this.boundJid ?? this.bare;
  }

  get state(): ServiceState {
    return this.stateValue;
  }

  /** a getter, not a field comparison: TypeScript would narrow the field across the awaits of run() */
  private get closed(): boolean {
    return this.stateValue === 'closed';
  }

  /** Connect and keep connected; settles with the first attempt (see the policy above). */
  start(): Promise<void> {
    if (this.closed && !this.started) return Promise.reject(new Error(`the service account ${this.bare} is closed`));
    this.started ??= new Promise<void>((resolve, reject) => {
      this.settleStart = (err) => (err ? reject(err) : resolve());
      void this.run();
    });
    return this.started;
  }

  request(iq: Element, timeoutMs = this.opts.config.requestTimeout): Promise<Element> {
    if (this.stateValue === 'closed') return Promise.reject(new StanzaError('service-unavailable', 'the service account is closed'));
    if (this.refused !== undefined) return Promise.reject(this.refusedError());
    // the connection's own flag: it may have ended a moment before run() moves the state on
    if (this.conn?.ready) return this.conn.request(iq, timeoutMs);
    return new Promise((resolve, reject) => {
      const w: Waiting = {
        iq,
        deadline: Date.now() + timeoutMs,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiting.delete(w);
          this.opts.onTimeout?.();
          const why = this.lastFailure ? `: ${this.lastFailure}` : '';
          reject(new StanzaError('remote-server-timeout', `the service account ${this.bare} did not connect within ${timeoutMs} ms${why}`));
        }, timeoutMs),
      };
      w.timer.unref();
      this.waiting.add(w);
    });
  }

  /** Close the stream politely and stop reconnecting; resolves once the socket is gone. */
  async close(): Promise<void> {
    if (this.stateValue === 'closed') return;
    this.setState('closed');
    this.wake?.();
    this.settleStart?.(new Error(`the service account ${this.bare} was closed before it could log in`));
    this.rejectWaiting(new StanzaError('service-unavailable', 'the service account is closed'));
    await this.conn?.close();
    this.log.info('service account closed');
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      this.setState('connecting');
      const conn = new ServiceConnection({
        config: this.opts.config,
        bare: this.bare,
        domain: this.domain,
        log: this.log,
        keepaliveMs: this.opts.keepaliveMs ?? KEEPALIVE_MS,
        onStanza: (el) => this.onStanza?.(el),
        ...(this.opts.onTimeout ? { onTimeout: this.opts.onTimeout } : {}),
        ...(this.opts.upstreamCa ? { upstreamCa: this.opts.upstreamCa } : {}),
      });
      this.conn = conn;
      try {
        this.boundJid = await conn.open(this.creds, this.resource);
      } catch (err) {
        void conn.close();
        if (this.closed) return;
        this.loginFailed(err as Error);
        await this.pause(this.delay(failures++));
        continue;
      }
      if (this.closed) return; // close() has closed this connection too
      failures = 0;
      this.loggedIn(conn);
      const reason = await conn.ended;
      if (this.closed) return;
      this.lastFailure = reason;
      this.setState('down');
      this.log.warn({ reason }, 'service account connection lost, reconnecting');
      await this.pause(this.delay(failures++));
    }
  }

  private loggedIn(conn: ServiceConnection): void {
    this.refused = undefined;
    this.lastFailure = undefined;
    this.setState('ready');
    this.log.info({ jid: this.boundJid, secure: !conn.plaintext }, 'service account ready');
    if (conn.plaintext) this.log.warn('the service account logged in with SASL PLAIN over an unencrypted connection');
    this.settleStart?.();
    this.settleStart = undefined;
    for (const w of this.waiting) {
      clearTimeout(w.timer);
      conn.request(w.iq, Math.max(1, w.deadline - Date.now())).then(w.resolve, w.reject);
    }
    this.waiting.clear();
  }

  private loginFailed(err: Error): void {
    const reason = err.message;
    if (err instanceof LoginRefused) {
      this.refused = reason;
      this.rejectWaiting(this.refusedError());
    } else {
      this.refused = undefined;
    }
    this.setState('down');
    // each reason once: a backend that stays down for an hour is one line, not hundreds
    if (reason !== this.lastFailure) this.log.error({ reason }, 'service account login failed, retrying in the background');
    else this.log.debug({ reason }, 'service account login failed again');
    this.lastFailure = reason;
    this.settleStart?.(new Error(`service account ${this.bare}: ${reason}`));
    this.settleStart = undefined;
  }

  private refusedError(): StanzaError {
    return new StanzaError('internal-server-error', `the service account ${this.bare} cannot log in: ${this.refused}`);
  }

  private rejectWaiting(err: StanzaError): void {
    for (const w of this.waiting) {
      clearTimeout(w.timer);
      w.reject(err);
    }
    this.waiting.clear();
  }

  private setState(state: ServiceState): void {
    if (state === this.stateValue) return;
    this.stateValue = state;
    this.log.debug({ state }, 'service account state');
  }

  /** The n-th delay: min(cap, base * 2^n), less up to half of it. */
  private delay(n: number): number {
    const { baseMs, capMs } = this.opts.backoff ?? RECONNECT;
    const full = Math.min(capMs, baseMs * 2 ** n);
    return full / 2 + (Math.random() * full) / 2;
  }

  /** Wait `ms`, or less if close() comes first. */
  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.wake?.(), ms);
      timer.unref();
      this.wake = () => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }
}
