// One connection of the service account: a BackendLeg (connect, STARTTLS, restart as for a client
// session), the login, then the proxy's requests with their own IqTracker. It ends once (lost,
// stream error, no answer to a keepalive, or closed by the account) and is never reused: the account
// makes a new one, with a new tracker, so an answer arriving late on a dead connection cannot settle
// a request of the next one.
import type { Element } from 'ltx';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { BackendLeg, type BackendLegEvents, type LegEnd } from '../session/backend-leg.js';
import { IqTracker } from '../session/tracker.js';
import type { Stanza } from '../stream/stanza.js';
import { xml } from '../stream/xml.js';
import { NS_PING } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { login, type Credentials } from './login.js';

export interface ConnectionOptions {
  config: Config;
  /** the account's bare JID and its domain (the stream's `to`) */
  bare: string;
  domain: string;
  log: Logger;
  upstreamCa?: Buffer;
  /** ping the server after this much silence (ms) */
  keepaliveMs: number;
  /** a stanza that answers none of our requests; true: an iq get/set it has answered */
  onStanza(el: Element): boolean | void;
  /** a request got no answer in time (metrics) */
  onTimeout?(): void;
}

export class ServiceConnection implements BackendLegEvents {
  /** the bound full JID, once logged in */
  jid: string | undefined;
  /** why it ended, once it has */
  endReason: string | undefined;
  /** resolves with the reason when the connection is over (the socket may still be closing) */
  readonly ended: Promise<string>;
  private resolveEnded!: (reason: string) => void;
  private readonly leg: BackendLeg;
  private readonly tracker: IqTracker;
  private loggedIn = false;
  private keepalive: NodeJS.Timeout | undefined;
  private pinging = false;
  private lastHeard = Date.now();
  private readonly socketGone: Promise<void>;
  private resolveSocketGone!: () => void;
  private readonly traceOn: boolean;

  constructor(private readonly opts: ConnectionOptions) {
    this.ended = new Promise((resolve) => (this.resolveEnded = resolve));
    this.socketGone = new Promise((resolve) => (this.resolveSocketGone = resolve));
    this.leg = new BackendLeg(opts.config, opts.domain, 'en', this, opts.log, opts.upstreamCa ? { ca: opts.upstreamCa } : {});
    this.tracker = new IqTracker(opts.config.requestTimeout, { accountBare: () => opts.bare }, opts.onTimeout ? { requestTimedOut: opts.onTimeout } : undefined);
    this.traceOn = opts.log.isLevelEnabled('trace');
  }

  /** logged in and not ended: requests may be sent */
  get ready(): boolean {
    return this.loggedIn;
  }

  /** true when the stream is not encrypted (PLAIN then shows the password to the network) */
  get plaintext(): boolean {
    return !this.leg.secure;
  }

  /**
   * Connect (bounded by --connect-timeout, in BackendLeg) and log in (bounded by --request-timeout);
   * resolves with the bound full JID. On failure the caller closes the connection.
   */
  async open(creds: Credentials, resource: string): Promise<string> {
    const features = await this.leg.open();
    const { requestTimeout } = this.opts.config;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no login within ${requestTimeout} ms of opening the stream`)), requestTimeout);
    });
    try {
      this.jid = await Promise.race([login(this.leg, features, creds, resource), late]);
    } finally {
      clearTimeout(timer);
    }
    if (this.endReason !== undefined) throw new Error(this.endReason); // ended between two steps
    this.loggedIn = true;
    this.lastHeard = Date.now();
    this.keepalive = setInterval(() => this.checkAlive(), this.opts.keepaliveMs);
    this.keepalive.unref();
    return this.jid;
  }

  /** Send `iq` (its id is replaced) and wait for its answer, as IqTracker does. */
  request(iq: Element, timeoutMs: number): Promise<Element> {
    const answer = this.tracker.track(iq, timeoutMs);
    if (this.traceOn) this.opts.log.trace({ out: 'service', xml: iq.toString() }, 'request');
    this.leg.send(iq);
    return answer;
  }

  /** Close politely (</stream:stream>); resolves once the socket is gone (at most ~2 s: XmlStream). */
  close(): Promise<void> {
    this.finish('closed by the proxy', new StanzaError('service-unavailable', 'the service account is closing'));
    this.leg.close();
    return this.socketGone;
  }

  /**
   * A half-open connection (the backend's host gone without a reset) would look ready for many
   * minutes (TCP keepalive): after a silence, an XMPP ping must come back within the request time-out.
   * Any answer, an error included, proves the connection alive.
   */
  private checkAlive(): void {
    if (!this.loggedIn || this.pinging || Date.now() - this.lastHeard < this.opts.keepaliveMs) return;
    this.pinging = true;
    this.request(xml('iq', { type: 'get', to: this.opts.domain }, xml('ping', { xmlns: NS_PING })), this.opts.config.requestTimeout)
      .catch((err: unknown) => {
        if (!(err instanceof StanzaError) || err.condition !== 'remote-server-timeout' || !this.loggedIn) return;
        this.finish('no answer to a keepalive ping');
        this.leg.close();
      })
      .finally(() => (this.pinging = false));
  }

  /**
   * The connection is over: fail the requests sent on it. 'remote-server-timeout' (type wait): the
   * answer is lost exactly as after a time-out, the request may or may not have been carried out, and
   * the caller may try again (the account reconnects); service-unavailable would say "never".
   */
  private finish(reason: string, err?: StanzaError): void {
    if (this.endReason !== undefined) return;
    this.endReason = reason;
    this.loggedIn = false;
    clearInterval(this.keepalive);
    this.tracker.rejectAll(() => err ?? new StanzaError('remote-server-timeout', `the service account's connection was lost (${reason}) before the answer came`));
    this.resolveEnded(reason);
  }

  // ---- the leg's events (BackendLegEvents) ----

  onBackendElement(s: Stanza): void {
    this.lastHeard = Date.now();
    if (this.tracker.match(s)) return;
    if (!this.loggedIn) return; // before binding: nothing is for us
    if (this.traceOn) this.opts.log.trace({ in: 'service', xml: s.raw }, 'stanza');
    const isRequest = s.name === 'iq' && (s.attrs.type === 'get' || s.attrs.type === 'set');
    if (isRequest && s.childIs('ping', NS_PING)) {
      // XEP-0199 §4.2: a server pinging us gets a pong (an error would do, but a result is the norm)
      this.leg.send(xml('iq', { type: 'result', id: s.attrs.id ?? '', ...(s.attrs.from ? { to: s.attrs.from } : {}) }));
      return;
    }
    let answered = false;
    try {
      answered = this.opts.onStanza(s.el) === true;
    } catch (err) {
      this.opts.log.error({ err }, 'service account stanza handler failed');
    }
    // RFC 6120 §8.2.3: every get/set gets an answer, so that nobody waits for us
    if (isRequest && !answered) this.leg.send(errorReply(s.el, 'service-unavailable', this.jid));
  }

  onBackendEnd(end: LegEnd): void {
    this.finish(
      end.kind === 'stream-error'
        ? `stream error ${end.condition}${end.text ? ` (${end.text})` : ''}`
        : end.kind === 'closed'
          ? 'the backend closed the stream'
          : `connection lost${end.error ? `: ${end.error.message}` : ''}`,
    );
  }

  onBackendGone(): void {
    this.finish('connection lost');
    this.resolveSocketGone();
  }

  onBackendBackpressure(): void {
    // nothing to slow down: the account's own requests are few, and the stream buffers them
  }
}
