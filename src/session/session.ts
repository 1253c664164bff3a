// One client and its backend leg: negotiation across the two (STARTTLS terminated here, SASL relayed
// byte for byte, both streams restarted, bind relayed and the JID recorded), then the rule pipeline
// in each direction, and the lifecycle (closes, errors, time-outs, shutdown).
//
// Phases of the client leg:
//   header  -> waiting for the client's stream header (again after STARTTLS and after SASL success)
//   preauth -> features sent; STARTTLS or SASL expected
//   sasl    -> an exchange is running: challenges/responses are relayed
//   authed  -> authenticated stream; bind (and session) iqs relayed, the bound JID recorded
//   bound   -> every stanza goes through the rule lanes
//   closed
import { randomToken } from '../xmpp/random.js';
import tls from 'node:tls';
import type { Element } from 'ltx';
import type { Logger } from 'pino';
import { addBindings, sessionLogger } from '../log.js';
import { sharedString } from '../stream/chars.js';
import type { Config } from '../config.js';
import { XmlStream, type StreamEvents } from '../stream/connection.js';
import type { Framing } from '../stream/framing.js';
import { StreamError, type StreamErrorCondition } from '../stream/errors.js';
import type { Stanza } from '../stream/stanza.js';
import type { Rule, ServiceRequester } from '../rules/types.js';
import { parseJid, isDomain, type JID } from '../xmpp/jid.js';
import { NS_BIND, NS_CLIENT, NS_SASL, NS_SM2, NS_SM3, NS_STANZAS, NS_TLS } from '../xmpp/ns.js';
import { StanzaError, errorReply, mayBounce } from '../xmpp/stanza-error.js';
import { BackendLeg, BackendUnavailable, type BackendLegEvents, type LegEnd } from './backend-leg.js';
import { mechanismsOf, postAuthFeatures, preAuthFeatures } from './features.js';
import { Lane, laneRoutes, type Direction, type LaneHost, type LaneRoutes } from './pipeline.js';
import { SessionContext, type ContextHost } from './context.js';
import { IqTracker, type TrackerOwner } from './tracker.js';
import { HeaderClock, type HeaderClockOwner } from './header-clock.js';
import type { SessionMeter } from './meter.js';
import { RewriteTrace } from './rewrite-trace.js';
import type { TlsCredentials } from '../tls-credentials.js';

type Phase = 'header' | 'preauth' | 'sasl' | 'authed' | 'bound' | 'closed';

/** The rule table, split once per proxy (every session shares these arrays). */
export interface RuleTable {
  all: readonly Rule[];
  /** the lanes' routes, per direction */
  client: LaneRoutes;
  backend: LaneRoutes;
  onBound: readonly Rule[];
  onClose: readonly Rule[];
  features: readonly Element[];
}

export function ruleTable(rules: readonly Rule[]): RuleTable {
  const client = laneRoutes(rules, 'client');
  const backend = laneRoutes(rules, 'backend');
  return {
    all: rules,
    client,
    backend,
    onBound: rules.filter((r) => r.onBound),
    onClose: rules.filter((r) => r.onClose),
    features: rules.flatMap((r) => r.features ?? []),
  };
}

/** The client's side of a session, as a listener accepted it. */
export interface ClientTransport {
  /** how its stream is carried (framing-tcp.ts, framing-ws.ts): the session never asks which */
  framing: Framing;
  /** the client's address, `host:port` (from the PROXY protocol header when there is one) */
  remote: string;
  /** the load balancer's `host:port`, when a PROXY protocol header named the client */
  via?: string;
  /** already encrypted (direct TLS, wss): no STARTTLS offered */
  secure: boolean;
}

export interface SessionDeps {
  config: Config;
  rules: RuleTable;
  log: Logger;
  /** server-side TLS for the client leg, read when a client starts TLS (absent: plaintext only) */
  credentials?: TlsCredentials;
  /** how the client reached the proxy, for metrics ('tcp': the c2s listener) */
  transport?: string;
  meter?: SessionMeter;
  /** at bind: is this JID traced (--trace)? */
  traceOf?(jid: JID, log: Logger): RewriteTrace | undefined;
  /** CA for the backend's certificate */
  upstreamCa?: Buffer;
  /** the proxy's service account, for the rules (RuleContext.service) */
  service?: ServiceRequester;
  /** called once when the session is completely gone */
  onGone?(session: Session): void;
}

/** the backend leg's TLS options without a CA of our own (one object for every session) */
const NO_CA: { ca?: Buffer } = Object.freeze({});

/** Time the rules' onClose hooks get to finish (e.g. publish "unavailable") before the backend leg closes. */
const CLOSE_HOOKS_MS = 5000;
/**
 * Our stream header waits this long at most for the features it goes out with (XmlStream.holdHeader):
 * a login's backend answers in milliseconds; a client's own header timeout is seconds (xmpp.js: 2 s).
 */
const HEADER_HOLD_MS = 250;

// reasons to stop reading a socket (bits)
const PAUSE_LANE = 1; // a rule of this direction is busy
const PAUSE_PEER_FULL = 2; // the other socket does not drain
const PAUSE_BIND = 4; // onBound hooks are running

export class Session implements LaneHost, ContextHost, StreamEvents, BackendLegEvents, TrackerOwner, HeaderClockOwner {
  readonly id = randomToken(6);
  log: Logger;
  private readonly client: XmlStream;
  private backend: BackendLeg | undefined;
  private backendReady: Promise<Element> | undefined;
  private phase: Phase = 'header';
  private domain = '';
  private lang = 'en';
  private clientSecure = false;
  private authenticated = false;
  private mechanisms: string[] | undefined;
  private bindId: string | undefined;
  private jidValue: JID | undefined;
  /** the bound JID's bare form, as the trackers compare it with every answer's `from` (made once) */
  private bareValue: string | undefined;
  /** client stanzas that arrived while the bind answer was pending: they wait for the lanes */
  private early: Stanza[] | undefined;
  private toBackendLane: Lane | undefined;
  private toClientLane: Lane | undefined;
  private ctx: SessionContext | undefined;
  private readonly tracker: IqTracker;
  /** the proxy's own iqs to the client (e.g. the disco#info of its entity capabilities); made at the first */
  private clientTracker: IqTracker | undefined;
  private negotiationTimer: NodeJS.Timeout | undefined;
  private readonly headerClock: HeaderClock;
  private closing = false;
  /**
   * What ended an ordinary session, for the 'session closed' line (at `info` a session logs three
   * lines: connected, bound, closed; the steps between are at `debug`: each line costs a login a
   * JSON serialization and a write, and the CLI's default level is `info`).
   */
  private ended: string | undefined;
  private gone = false;
  private clientGone = false;
  private backendGone = false;
  /** why the client / backend socket is not read (PAUSE_* bits) */
  private clientPause = 0;
  private backendPause = 0;
  private readonly transport: string;
  /** the operator trace of this session's rewrites, while its user is traced */
  private trace: RewriteTrace | undefined;

  constructor(
    transport: ClientTransport,
    private readonly deps: SessionDeps,
  ) {
    this.log = sessionLogger(deps.log, { sid: this.id });
    this.traceOn = deps.log.isLevelEnabled('trace');
    this.transport = deps.transport ?? transport.framing.kind;
    deps.meter?.opened(this.transport);
    this.clientSecure = transport.secure;
    this.client = new XmlStream(transport.framing, this);
    // the session is the owner the trackers and the header clock call back (no closures per session)
    this.tracker = new IqTracker(deps.config.requestTimeout, this, deps.meter);
    this.negotiationTimer = setTimeout(() => this.streamError('connection-timeout', 'negotiation took too long'), deps.config.negotiationTimeout);
    this.negotiationTimer.unref();
    this.headerClock = new HeaderClock(deps.config.headerTimeout, this);
    this.headerClock.start();
    this.log.info({ remote: transport.remote, ...(transport.via ? { via: transport.via } : {}), transport: transport.framing.kind, secure: transport.secure }, 'client connected');
  }

  /** TrackerOwner: answers to requests without `to` come from the bound account */
  accountBare(): string | undefined {
    return this.bareValue;
  }

  /** HeaderClockOwner */
  headerTimedOut(): void {
    this.streamError('connection-timeout', `${this.phase === 'header' ? 'stream header' : 'element'} not completed in time`);
  }

  // ---- the client's stream header ------------------------------------------------------------

  private ourHeader(): Record<string, string> {
    return { id: randomToken(9), from: this.domain || 'localhost', version: '1.0', 'xml:lang': this.lang };
  }

  // ---- the client stream's events (StreamEvents) ----

  onChunk(partial: boolean): void {
    // in the header phase the clock runs from the (re)start whatever arrives; from binding on, none
    if (this.phase !== 'header' && this.phase !== 'bound' && this.phase !== 'closed') this.headerClock.chunk(partial);
  }

  onStreamStart(_name: string, attrs: Record<string, string>): void {
    if (this.phase !== 'header') throw new StreamError('not-well-formed', 'unexpected stream header');
    this.headerClock.stop();
    const to = attrs.to;
    if (attrs['xml:lang']) this.lang = sharedString(attrs['xml:lang']);
    if (attrs.xmlns !== NS_CLIENT) {
      this.domain ||= to && isDomain(to) ? to.toLowerCase() : '';
      throw new StreamError('invalid-namespace', `the content namespace must be ${NS_CLIENT}`);
    }
    if (!to || !isDomain(to)) throw new StreamError('host-unknown', 'the stream header needs the domain in its to attribute');
    const domain = to.toLowerCase();
    if (this.domain && domain !== this.domain) throw new StreamError('host-unknown', `the stream was opened for ${this.domain}`);
    this.domain = sharedString(domain);
    const version = attrs.version ?? '0.0';
    if (!/^[0-9]+\.[0-9]+$/.test(version) || Number(version.split('.')[0]) < 1) {
      throw new StreamError('unsupported-version', 'XMPP 1.0 streams only');
    }
    this.client.holdHeader(this.ourHeader(), HEADER_HOLD_MS); // sent with the features (or an error): one write
    if (this.authenticated) {
      this.phase = 'authed';
      void this.sendFeatures(this.backendReady!, (f) => postAuthFeatures(f, this.deps.rules.features));
    } else {
      this.phase = 'preauth';
      if (!this.backend) this.backendReady = this.openBackend();
      const offerStartTls = Boolean(this.deps.credentials) && !this.clientSecure && this.client.canUpgrade;
      void this.sendFeatures(this.backendReady!, (f) => {
        this.mechanisms = mechanismsOf(f);
        return preAuthFeatures(f, { offerStartTls, requireTls: offerStartTls && this.deps.config.requireTls });
      });
    }
  }

  private async sendFeatures(ready: Promise<Element>, make: (f: Element) => Element): Promise<void> {
    let features: Element;
    try {
      features = await ready;
    } catch (err) {
      this.backendFailed(err);
      return;
    }
    if (this.phase === 'closed') return;
    this.client.send(make(features));
  }

  private openBackend(): Promise<Element> {
    this.backend = new BackendLeg(this.deps.config, this.domain, this.lang, this, this.log, this.deps.upstreamCa ? { ca: this.deps.upstreamCa } : NO_CA);
    const ready = this.backend.open();
    ready.then(
      () => this.log.debug({ secure: this.backend?.secure, backendStream: this.backend?.streamId }, 'backend stream open'),
      () => undefined,
    );
    return ready;
  }

  private backendFailed(err: unknown): void {
    if (this.phase === 'closed') return;
    if (err instanceof BackendUnavailable) {
      this.log.warn({ reason: err.message }, 'backend unavailable');
      this.streamError(err.condition, err.condition === 'remote-connection-failed' ? 'the backend is unavailable' : err.message);
    } else {
      this.log.error({ err }, 'backend negotiation failed');
      this.streamError('internal-server-error');
    }
  }

  // ---- elements from the client --------------------------------------------------------------

  onElement(s: Stanza): void {
    if (this.traceOn && this.authenticated) this.log.trace({ in: 'client', xml: s.raw }, 'stanza'); // never SASL data
    if (this.phase !== 'bound') this.headerClock.stop(); // complete; onChunk starts it if another one began
    switch (this.phase) {
      case 'bound':
        if (this.clientTracker?.match(s)) return; // the client's answer to one of the proxy's own iqs
        if (s.isStanza) this.toBackendLane!.push(s);
        else this.clientNonza(s);
        return;
      case 'preauth':
        return this.preauthElement(s);
      case 'sasl':
        return this.saslElement(s);
      case 'authed':
        return this.authedElement(s);
      default:
        throw new StreamError('not-authorized', 'unexpected element during negotiation');
    }
  }

  private preauthElement(s: Stanza): void {
    if (s.name === 'starttls' && s.attrs.xmlns === NS_TLS) {
      const credentials = this.deps.credentials;
      if (!credentials || this.clientSecure || !this.client.canUpgrade) {
        this.client.sendRaw(`<failure xmlns='${NS_TLS}'/>`);
        this.client.close();
        return;
      }
      this.client.sendRaw(`<proceed xmlns='${NS_TLS}'/>`);
      this.phase = 'header';
      this.headerClock.start(); // the TLS handshake counts: a peer stalling in it is cut off too
      this.client.upgrade((plain) => {
        // the context of now: after a reload (SIGHUP) the new certificate
        const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: credentials.context });
        secure.once('secure', () => this.log.debug({ protocol: secure.getProtocol() }, 'client TLS established'));
        return secure;
      });
      this.clientSecure = true;
      return;
    }
    if (this.deps.config.requireTls && !this.clientSecure) {
      if (s.name === 'auth' && s.attrs.xmlns === NS_SASL) {
        this.client.sendRaw(`<failure xmlns='${NS_SASL}'><encryption-required/></failure>`);
        return;
      }
      throw new StreamError('policy-violation', 'STARTTLS is required');
    }
    if (s.name === 'auth' && s.attrs.xmlns === NS_SASL) {
      const mech = s.attrs.mechanism ?? '';
      if (!this.mechanisms?.includes(mech)) {
        this.client.sendRaw(`<failure xmlns='${NS_SASL}'><invalid-mechanism/></failure>`);
        return;
      }
      this.log.debug({ mechanism: mech }, 'SASL started');
      this.saslMechanism = mech;
      this.phase = 'sasl';
      this.backend!.sendRaw(s.raw);
      return;
    }
    throw new StreamError('not-authorized', `<${s.name}/> before authentication`);
  }

  private saslMechanism = '';
  /** stanza tracing is costly: decided once per session */
  private traceOn = false;

  private saslElement(s: Stanza): void {
    if ((s.name === 'response' || s.name === 'abort') && s.attrs.xmlns === NS_SASL) {
      this.backend!.sendRaw(s.raw);
      return;
    }
    throw new StreamError('not-authorized', `<${s.name}/> during SASL`);
  }

  private authedElement(s: Stanza): void {
    if (this.bindId !== undefined) {
      (this.early ??= []).push(s); // wait for the bind answer, then go through the rules
      return;
    }
    if (s.name === 'iq' && s.childIs('bind', NS_BIND) && s.attrs.type === 'set') {
      this.bindId = s.attrs.id ?? '';
    }
    if (s.isStanza) this.backend!.sendRaw(s.raw);
    else this.clientNonza(s);
  }

  /** Top-level elements that are not stanzas, once authenticated. */
  private clientNonza(s: Stanza): void {
    const ns = s.attrs.xmlns;
    if (ns === NS_SM3 || ns === NS_SM2) {
      // not offered (features.ts): answer locally so the backend never starts counting our stanzas
      if (s.name === 'enable') this.client.sendRaw(`<failed xmlns='${ns}'><unexpected-request xmlns='${NS_STANZAS}'/></failed>`);
      return;
    }
    this.backend?.sendRaw(s.raw); // e.g. client state indication
  }

  onStreamEnd(): void {
    this.endedBy('debug', 'client closed its stream');
    void this.shutdownBoth();
  }

  onWhitespace(): void {
    if (this.phase === 'bound') this.backend?.sendRaw(' '); // keepalives keep the backend leg alive too
  }

  onBackpressure(full: boolean): void {
    this.pauseBackend(PAUSE_PEER_FULL, full); // the client does not drain: stop reading the backend
  }

  onViolation(err: StreamError): void {
    this.endedBy('info', 'client stream error', { condition: err.condition, reason: err.text });
    this.streamError(err.condition, err.text);
  }

  // ---- elements from the backend -------------------------------------------------------------

  // ---- the backend leg's events (BackendLegEvents) ----

  onBackendElement(s: Stanza): void {
    if (this.traceOn && this.authenticated) this.log.trace({ in: 'backend', xml: s.raw }, 'stanza');
    if (this.tracker.match(s)) return;
    switch (this.phase) {
      case 'bound':
        this.toClientLane!.push(s);
        return;
      case 'sasl':
        return this.saslResult(s);
      case 'authed':
      case 'header':
        if (this.authenticated) return this.authedResult(s);
        break;
    }
    if (this.closing && s.name === 'iq' && (s.attrs.type === 'get' || s.attrs.type === 'set')) {
      // the client is gone: a request for it is answered as the backend would for a gone session
      // (RFC 6120 §8.2.3: every get/set gets an answer), so that nobody waits for it
      this.backend?.send(errorReply(s.el, 'service-unavailable', this.jidValue?.toString()));
      return;
    }
    this.log.debug({ name: s.name }, 'unexpected element from the backend during negotiation');
  }

  private saslResult(s: Stanza): void {
    if (s.attrs.xmlns !== NS_SASL) return;
    switch (s.name) {
      case 'challenge':
        this.client.sendRaw(s.raw);
        return;
      case 'failure':
        this.log.info({ mechanism: this.saslMechanism, condition: s.childName }, 'authentication failed');
        this.deps.meter?.login(this.transport, false);
        this.phase = 'preauth';
        this.client.sendRaw(s.raw);
        return;
      case 'success':
        this.log.debug({ mechanism: this.saslMechanism }, 'authenticated');
        this.deps.meter?.login(this.transport, true);
        this.authenticated = true;
        this.phase = 'header';
        this.headerClock.start();
        this.client.sendRaw(s.raw);
        this.client.restart();
        this.backendReady = this.backend!.restart();
        this.backendReady.catch(() => undefined); // handled where it is awaited
        return;
    }
  }

  private authedResult(s: Stanza): void {
    if (this.bindId !== undefined && s.name === 'iq' && s.attrs.id === this.bindId && (s.attrs.type === 'result' || s.attrs.type === 'error')) {
      this.bindId = undefined;
      if (s.attrs.type === 'result') {
        const jid = parseJid(s.el.getChild('bind', NS_BIND)?.getChildText('jid') ?? undefined);
        if (jid && jid.resource) {
          this.client.sendRaw(s.raw);
          this.bound(jid);
          return;
        }
        this.log.warn('bind result without a usable JID');
      }
      this.client.sendRaw(s.raw);
      // bind failed: whatever the client sent meanwhile goes on as before binding
      const early = this.early ?? [];
      this.early = undefined;
      for (const e of early) this.authedElement(e);
      return;
    }
    this.client.sendRaw(s.raw);
  }

  // ---- bound: the rule pipeline --------------------------------------------------------------

  private bound(jid: JID): void {
    this.jidValue = jid;
    this.bareValue = jid.bare().toString();
    this.phase = 'bound';
    clearTimeout(this.negotiationTimer);
    this.negotiationTimer = undefined;
    this.headerClock.stop();
    // negotiation state no longer needed: let it go (it counts per idle session)
    this.mechanisms = undefined;
    const mechanism = this.saslMechanism; // for the 'bound' line
    this.saslMechanism = '';
    this.backendReady = undefined;
    if (this.backend) {
      this.backend.features = undefined;
      this.backend.streamId = undefined; // logged when the leg opened
    }
    addBindings(this.log, { jid: jid.toString() });
    this.log.info({ mechanism }, 'bound');
    const rules = this.deps.rules;
    const ctx = new SessionContext(this, jid, this.domain, this.id, this.deps.service, this.bareValue);
    this.ctx = ctx;
    this.toBackendLane = new Lane(rules.client, ctx, this);
    this.toClientLane = new Lane(rules.backend, ctx, this);
    this.setTrace(this.deps.traceOf?.(jid, this.log));
    // stanzas the client sent before the bind answer wait until every onBound hook has run
    const early = this.early ?? [];
    this.early = undefined;
    if (rules.onBound.length === 0) {
      for (const s of early) this.onElement(s);
      return;
    }
    this.pauseClient(PAUSE_BIND, true);
    void (async () => {
      for (const r of rules.onBound) {
        try {
          await this.hook('onBound', r.name, () => r.onBound!(ctx));
        } catch (err) {
          this.log.error({ err, rule: r.name }, 'onBound failed');
        }
        if (this.phase !== 'bound') return; // a hook ended the session (or the client left)
      }
      for (const s of early) this.onElement(s);
      this.pauseClient(PAUSE_BIND, false);
    })();
  }

  // ---- what lanes and rule contexts use --------------------------------------------------------

  laneForward(from: Direction, s: Stanza): void {
    if (from === 'client') this.backend?.sendRaw(s.raw);
    else this.client.sendRaw(s.raw);
  }

  laneFailed(from: Direction, s: Stanza, err: unknown): void {
    this.ruleFailed(s, err, from);
  }

  laneBusy(from: Direction, busy: boolean): void {
    // Only the client socket is paused for a busy rule. The backend socket never is: a rule may be
    // waiting for an answer that only arrives on it (the tracker reads answers ahead of the lane).
    if (from === 'client') this.pauseClient(PAUSE_LANE, busy);
  }

  sendToClient(el: Element): void {
    if (this.trace) this.trace.output('client', el.toString());
    this.client.send(el);
  }

  sendToBackend(el: Element): void {
    if (this.trace) this.trace.output('backend', el.toString());
    this.backend?.send(el);
  }

  request(iq: Element, timeoutMs?: number): Promise<Element> {
    if (!this.backend || this.backendGone) return Promise.reject(new StanzaError('remote-server-not-found', 'the backend connection is closed'));
    const answer = this.tracker.track(iq, timeoutMs);
    if (this.traceOn) this.log.trace({ out: 'backend', xml: iq.toString() }, 'request');
    this.backend.send(iq);
    const trace = this.trace;
    if (trace) {
      trace.output('backend', iq.toString());
      answer.then(
        (el) => trace.answer(el.toString()),
        (err: unknown) => trace.failure(err),
      );
    }
    return answer;
  }

  /** Start (a RewriteTrace) or stop (undefined) logging this session's rewrites (--trace, admin). */
  setTrace(trace: RewriteTrace | undefined): void {
    if (trace && !this.trace) RewriteTrace.attach();
    else if (!trace && this.trace) RewriteTrace.detach();
    this.trace = trace;
    if (this.toBackendLane) this.toBackendLane.trace = trace;
    if (this.toClientLane) this.toClientLane.trace = trace;
  }

  /** the bound JID (undefined before binding) */
  get jid(): JID | undefined {
    return this.jidValue;
  }

  /** XML bytes read from and written to each leg so far (after TLS: what the streams carry) */
  get bytes(): { clientIn: number; clientOut: number; backendIn: number; backendOut: number } {
    const b = this.backend?.stream;
    return { clientIn: this.client.bytesIn, clientOut: this.client.bytesOut, backendIn: b?.bytesIn ?? 0, backendOut: b?.bytesOut ?? 0 };
  }

  /** A hook of the rules (onBound, onClose): in a traced session, what it sends is logged with it. */
  private hook<T>(hook: 'onBound' | 'onClose', rule: string, run: () => T): T {
    const trace = this.trace;
    if (!trace) return run();
    const rw = trace.begin(hook);
    const result = trace.within(rw, run);
    // a hook that sent nothing (most rules at close) is not worth a line
    void Promise.resolve(result).then(
      () => (rw.out.length > 0 ? trace.end(rw, rule) : (rw.done = true)),
      (err: unknown) => trace.end(rw, rule, err),
    );
    return result;
  }

  requestClient(iq: Element, timeoutMs?: number): Promise<Element> {
    if (this.clientGone || this.closing) return Promise.reject(new StanzaError('recipient-unavailable', 'the client is gone'));
    const answer = (this.clientTracker ??= new IqTracker(this.deps.config.requestTimeout, this)).track(iq, timeoutMs);
    this.client.send(iq);
    return answer;
  }

  /** A rule threw: tell the sender (unless that would answer an error or result), drop the stanza. */
  private ruleFailed(s: Stanza, err: unknown, from: 'client' | 'backend'): void {
    const e = err instanceof StanzaError ? err : new StanzaError('internal-server-error');
    if (!(err instanceof StanzaError)) this.log.error({ err, stanza: s.name }, 'rule failed');
    if (from === 'client' && mayBounce(s.el)) this.client.send(errorReply(s.el, e, this.domain));
    else if (from === 'backend' && mayBounce(s.el) && s.attrs.from) this.backend?.send(errorReply(s.el, e, this.jidValue?.toString()));
  }

  private pauseClient(reason: number, on: boolean): void {
    const before = this.clientPause;
    this.clientPause = on ? before | reason : before & ~reason;
    if (before === 0 && this.clientPause !== 0) this.client.pause();
    else if (before !== 0 && this.clientPause === 0) this.client.resume();
  }

  private pauseBackend(reason: number, on: boolean): void {
    const before = this.backendPause;
    this.backendPause = on ? before | reason : before & ~reason;
    const stream = this.backend?.stream;
    if (before === 0 && this.backendPause !== 0) stream?.pause();
    else if (before !== 0 && this.backendPause === 0) stream?.resume();
  }

  // ---- ends ----------------------------------------------------------------------------------

  /**
   * Send a stream error to the client and close both legs. In the header phase (before the client's
   * first header, and again after each STARTTLS or SASL restart) our current stream is not open yet:
   * the error needs a header of its own (RFC 6120 §4.9.1.1), else the client reads an unbound prefix.
   */
  streamError(condition: StreamErrorCondition, text?: string): void {
    if (this.phase === 'closed') return;
    this.deps.meter?.streamError(condition);
    this.client.error(condition, text, this.phase === 'header' ? this.ourHeader() : undefined);
    void this.shutdownBoth();
  }

  /** Process shutdown: <system-shutdown/> to the client, then both legs closed. */
  shutdown(): Promise<void> {
    this.streamError('system-shutdown', 'the proxy is shutting down');
    return this.closed;
  }

  /**
   * Graceful shutdown (SIGTERM): for a bound session, first what its close does for the rules (the
   * contacts see it go unavailable, it leaves its rooms...), while the client is still connected;
   * then <system-shutdown/>; then the backend requests still in flight get until `deadline`
   * (Date.now() based) to be answered before the backend leg closes. Not bound yet: as shutdown().
   */
  drain(deadline: number): Promise<void> {
    if (this.phase !== 'bound') return this.shutdown();
    void this.shutdownBoth({ condition: 'system-shutdown', text: 'the proxy is shutting down', deadline });
    return this.closed;
  }

  /** made when somebody first waits for the end (a drain, a test): an idle session keeps none */
  private whenClosed: { promise: Promise<void>; resolve: () => void } | undefined;

  /** Resolves once both sockets are gone. */
  get closed(): Promise<void> {
    if (this.gone) return Promise.resolve();
    if (!this.whenClosed) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.whenClosed = { promise, resolve };
    }
    return this.whenClosed.promise;
  }

  /**
   * Close the session: run the rules' onClose hooks while the backend leg is still open (bounded by
   * CLOSE_HOOKS_MS), then close the backend stream and the client stream.
   */
  private async shutdownBoth(drain?: { condition: StreamErrorCondition; text: string; deadline: number }): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const wasBound = this.phase === 'bound';
    this.phase = 'closed';
    clearTimeout(this.negotiationTimer);
    this.headerClock.stop();
    const inHand = this.toBackendLane?.stop();
    this.toClientLane?.stop();
    if (wasBound && this.ctx && !this.backendGone) {
      const hooks = this.deps.rules.onClose;
      const run = (async () => {
        await inHand; // a rule still busy with the client's last stanza finishes first
        // side by side: each rule takes back what it published (presence, rooms, markers...), and
        // none should wait for another's round trips before its contacts see the session go
        await Promise.all(
          hooks.map(async (r) => {
            try {
              await this.hook('onClose', r.name, () => r.onClose!(this.ctx!));
            } catch (err) {
              this.log.warn({ err, rule: r.name }, 'onClose failed');
            }
          }),
        );
      })();
      const hooksMs = drain ? Math.min(CLOSE_HOOKS_MS, drain.deadline - Date.now()) : CLOSE_HOOKS_MS;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([run, new Promise<void>((resolve) => (timer = setTimeout(resolve, hooksMs)))]);
      clearTimeout(timer);
    }
    if (drain) {
      // the client learns of the shutdown only now that its contacts have seen it leave
      this.deps.meter?.streamError(drain.condition);
      this.client.error(drain.condition, drain.text);
      await this.tracker.whenIdle(drain.deadline - Date.now());
    }
    this.tracker.rejectAll(() => new StanzaError('remote-server-not-found', 'session closed'));
    this.clientTracker?.rejectAll(() => new StanzaError('recipient-unavailable', 'session closed'));
    this.backend?.close();
    this.client.close();
    this.checkGone();
  }

  onBackendBackpressure(full: boolean): void {
    this.pauseClient(PAUSE_PEER_FULL, full);
  }

  onBackendGone(): void {
    this.backendGone = true;
    this.checkGone();
  }

  onClose(err?: Error): void {
    this.clientGone = true;
    if (!this.closing) {
      this.endedBy('info', 'client disconnected', { reason: err?.message ?? 'socket closed' });
      void this.shutdownBoth();
    }
    this.checkGone();
  }

  onBackendEnd(end: LegEnd): void {
    this.tracker.rejectAll(() => new StanzaError('remote-server-not-found', 'backend connection closed'));
    if (!this.closing) {
      if (end.kind === 'stream-error') {
        this.endedBy('info', 'backend stream error', { condition: end.condition, text: end.text });
        this.streamError(end.condition, end.text);
      } else if (end.kind === 'closed') {
        this.endedBy('info', 'backend closed the stream');
        this.phase = 'closed';
        this.closing = true;
        this.client.close();
      } else {
        this.endedBy('warn', 'backend connection lost', { reason: end.error?.message });
        this.streamError('remote-connection-failed', 'the connection to the backend was lost');
      }
    }
    this.checkGone();
  }

  /** Log what ends the session; the first such cause is the 'session closed' line's `end`. */
  private endedBy(level: 'debug' | 'info' | 'warn', what: string, fields: Record<string, unknown> = {}): void {
    this.log[level](fields, what);
    this.ended ??= what;
  }

  private checkGone(): void {
    if (this.gone || !this.clientGone || (this.backend && !this.backendGone)) return;
    this.gone = true;
    this.log.info({ bytesIn: this.client.bytesIn, ...(this.ended ? { end: this.ended } : {}) }, 'session closed');
    this.deps.meter?.closed(this.transport);
    this.setTrace(undefined);
    this.whenClosed?.resolve();
    this.deps.onGone?.(this);
  }
}
