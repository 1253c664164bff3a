// The contract between the session and the rules. A rule is plain code over stanzas: it sees each
// stanza of a direction in order and either claims it (returns true: nothing else sees it, nothing is
// forwarded) or lets it go on (returns false/undefined: the next rule, and finally pass-through, get
// it). It talks to the world only through its RuleContext, so the fixture tests run the same code
// with a context that records what was sent.
import type { Element } from 'ltx';
import type { Logger } from 'pino';
import type { StreamErrorCondition } from '../stream/errors.js';
import type { Stanza } from '../stream/stanza.js';
import type { JID } from '../xmpp/jid.js';

export type Verdict = boolean | void;

export interface Rule {
  /** short name, for logs */
  readonly name: string;
  /** stream features the rule adds to those offered after authentication */
  readonly features?: readonly Element[];
  /** a stanza from the client, after resource binding */
  fromClient?(stanza: Stanza, ctx: RuleContext): Verdict | Promise<Verdict>;
  /** a stanza from the backend, after resource binding */
  fromBackend?(stanza: Stanza, ctx: RuleContext): Verdict | Promise<Verdict>;
  /** the session is bound (before any client stanza goes through the rules) */
  onBound?(ctx: RuleContext): void | Promise<void>;
  /** the client is gone or closing; the backend leg is still open until every onClose has finished */
  onClose?(ctx: RuleContext): void | Promise<void>;
}

/** The proxy's service account on the backend (creates and owns nodes on pubsub components). */
export interface ServiceRequester {
  /** its bound full JID */
  readonly jid: string;
  readonly bare: string;
  request(iq: Element, timeoutMs?: number): Promise<Element>;
}

export interface RuleContext {
  /** the bound full JID, as the backend assigned it */
  readonly jid: JID;
  /** its bare JID, as a string (compared often) */
  readonly bare: string;
  /** the user's domain (the stream's `to`) */
  readonly domain: string;
  /** session id, for logs and correlation */
  readonly sessionId: string;
  readonly log: Logger;
  /** per-session state of each rule, keyed by rule name */
  readonly state: Map<string, unknown>;
  /** the service account, where one is configured */
  readonly service?: ServiceRequester;
  /** send to the client (in order with everything else sent to it) */
  toClient(el: Element): void;
  /** send to the backend (in order with everything else sent to it) */
  toBackend(el: Element): void;
  /**
   * Send an iq of the proxy's own to the backend and wait for its answer. The id is the proxy's
   * (never one a client uses) and the answer never reaches the client. Resolves with the result iq;
   * rejects with a StanzaError (the backend's error) or a StanzaError 'remote-server-timeout'.
   */
  request(iq: Element, timeoutMs?: number): Promise<Element>;
  /**
   * End the session: the client gets this stream error, then both legs close (onClose hooks still
   * run). Only for a session that cannot work at all; one failed stanza is a stanza error instead.
   */
  endSession(condition: StreamErrorCondition, text?: string): void;
}
