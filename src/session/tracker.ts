// The proxy's own iq requests to the backend: ids that cannot collide with a client's, answers
// matched before they could reach the client, time-outs.
import { randomToken } from '../xmpp/random.js';
import type { Element } from 'ltx';
import type { Stanza } from '../stream/stanza.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import { bareOf } from '../xmpp/jid.js';

interface Pending {
  resolve(el: Element): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
  to: string | undefined;
}

/** Whose requests these are. An object (the session itself), not closures: a session has two trackers. */
export interface TrackerOwner {
  /** the account's bare JID: answers to requests without `to` come from it (or have no from) */
  accountBare(): string | undefined;
}

export class IqTracker {
  /** per-session random prefix: a client cannot guess it, so its ids never collide with ours */
  private readonly prefix = `x207${randomToken(6)}-`;
  private seq = 0;
  private pending: Map<string, Pending> | undefined; // created on first use: idle sessions keep none
  /** a drain waits for the requests in flight (whenIdle) */
  private idle: Array<() => void> | undefined;

  constructor(
    private readonly defaultTimeout: number,
    private readonly owner: TrackerOwner,
    /** told when a request got no answer in time (metrics; shared by the proxy's sessions) */
    private readonly meter?: { requestTimedOut(): void },
  ) {}

  /** how many requests wait for an answer */
  get inFlight(): number {
    return this.pending?.size ?? 0;
  }

  /** Resolves once no request waits for an answer (at once if none does), or after `timeoutMs`. */
  whenIdle(timeoutMs: number): Promise<void> {
    if (this.inFlight === 0 || timeoutMs <= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      (this.idle ??= []).push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  private settled(): void {
    if (this.idle === undefined || this.inFlight !== 0) return;
    const idle = this.idle;
    this.idle = undefined;
    for (const f of idle) f();
  }

  /** Give `iq` a fresh id and return the promise of its answer. The caller sends it. */
  track(iq: Element, timeoutMs = this.defaultTimeout): Promise<Element> {
    const id = this.prefix + (++this.seq).toString(36);
    iq.attrs.id = id;
    const to = iq.attrs.to as string | undefined;
    return new Promise<Element>((resolve, reject) => {
      const pending = (this.pending ??= new Map());
      const timer = setTimeout(() => {
        this.forget(id);
        this.meter?.requestTimedOut();
        this.settled();
        reject(new StanzaError('remote-server-timeout', `no answer from ${to ?? 'the backend'} within ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      pending.set(id, { resolve, reject, timer, to });
    });
  }

  /** If `s` answers one of our requests, settle it and return true (the stanza is consumed). */
  match(s: Stanza): boolean {
    if (s.name !== 'iq') return false;
    const id = s.attrs.id;
    if (id === undefined || !id.startsWith(this.prefix)) return false;
    const type = s.attrs.type;
    if (type !== 'result' && type !== 'error') return false;
    const p = this.pending?.get(id);
    if (!p) return true; // late answer to a request that timed out: ours, so never the client's
    if (!this.fromMatches(p.to, s.attrs.from)) return true; // spoofed answer: ignore, keep waiting
    this.forget(id);
    clearTimeout(p.timer);
    if (type === 'result') p.resolve(s.el);
    else p.reject(StanzaError.fromStanza(s.el));
    this.settled();
    return true;
  }

  /** An answered (or timed-out) request: once none is left, the map goes too (idle sessions keep none). */
  private forget(id: string): void {
    const pending = this.pending;
    if (pending === undefined) return;
    pending.delete(id);
    if (pending.size === 0) this.pending = undefined;
  }

  private fromMatches(to: string | undefined, from: string | undefined): boolean {
    if (from === undefined) return true;
    const account = this.owner.accountBare();
    if (to === undefined) return account !== undefined && (from === account || bareOf(from) === account);
    return from === to || (account !== undefined && to === account && bareOf(from) === account);
  }

  /** Fail every pending request (the backend leg is gone). */
  /** `err` made only when something waits: an Error's stack costs, and most sessions end with nothing pending. */
  rejectAll(err: () => Error): void {
    if (!this.pending) return;
    const e = err();
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(e);
    }
    this.pending = undefined;
    this.settled();
  }
}
