// The RuleContext of a bound session: what a rule may do, and nothing else. A class (methods on the
// prototype) rather than an object of closures: it exists once per session, so it should be small.
import type { Element } from 'ltx';
import type { Logger } from 'pino';
import type { RuleContext, ServiceRequester } from '../rules/types.js';
import type { StreamErrorCondition } from '../stream/errors.js';
import type { JID } from '../xmpp/jid.js';

/** The session side of a context. */
export interface ContextHost {
  readonly log: Logger;
  sendToClient(el: Element): void;
  sendToBackend(el: Element): void;
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  requestClient(iq: Element, timeoutMs?: number): Promise<Element>;
  streamError(condition: StreamErrorCondition, text?: string): void;
}

export class SessionContext implements RuleContext {
  readonly bare: string;
  readonly state = new Map<string, unknown>();

  constructor(
    private readonly host: ContextHost,
    readonly jid: JID,
    readonly domain: string,
    readonly sessionId: string,
    readonly service?: ServiceRequester,
    /** the bare JID as the session made it already (one string per session, not two) */
    bare?: string,
  ) {
    this.bare = bare ?? jid.bare().toString();
  }

  get log(): Logger {
    return this.host.log;
  }

  toClient(el: Element): void {
    this.host.sendToClient(el);
  }

  toBackend(el: Element): void {
    this.host.sendToBackend(el);
  }

  request(iq: Element, timeoutMs?: number): Promise<Element> {
    return this.host.request(iq, timeoutMs);
  }

  requestClient(iq: Element, timeoutMs?: number): Promise<Element> {
    return this.host.requestClient(iq, timeoutMs);
  }

  endSession(condition: StreamErrorCondition, text?: string): void {
    this.host.streamError(condition, text);
  }
}
