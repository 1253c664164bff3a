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

/** The stanzas of RFC 6120 §8, as a rule names those its hooks read (Rule.sees). */
export type StanzaKind = 'message' | 'presence' | 'iq';

export interface Rule {
  /** short name, for logs */
  readonly name: string;
  /** stream features the rule adds to those offered after authentication */
  readonly features?: readonly Element[];
  /** a stanza from the client, after resource binding */
  fromClient?(stanza: Stanza, ctx: RuleContext): Verdict | Promise<Verdict>;
  /** a stanza from the backend, after resource binding */
  fromBackend?(stanza: Stanza, ctx: RuleContext): Verdict | Promise<Verdict>;
  /**
   * Which stanzas fromClient / fromBackend read (a direction left out: every stanza). The lanes
   * offer a hook only these, so a rule about iq is never asked about a chat message; a hook must
   * pass on (return false, send nothing) whatever else it is given (test/rule-kinds.test.ts checks).
   */
  readonly sees?: { readonly client?: readonly StanzaKind[]; readonly backend?: readonly StanzaKind[] };
  /** the session is bound (before any client stanza goes through the rules) */
  onBound?(ctx: RuleContext): void | Promise<void>;
  /** the client is gone or closing; the backend leg is still open until every onClose has finished */
  onClose?(ctx: RuleContext): void | Promise<void>;
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
   * Send an iq of the proxy's own to the client and wait for its answer (as `request`, the other
   * way: the id is the proxy's and the answer never reaches the backend). Absent in contexts without
   * a client (the fixture tests).
   */
  requestClient?(iq: Element, timeoutMs?: number): Promise<Element>;
  /**
   * The proxy's service account (--service-jid), for what a user's own session may not do: create
   * and own nodes on a pubsub component (Prosody lets only the component's admins create nodes).
   * Absent when no service account is configured.
   */
  readonly service?: ServiceRequester;
  /**
   * End the session: the client gets this stream error, then both legs close (onClose hooks still
   * run). Only for a session that cannot work at all; one failed stanza is a stanza error instead.
   */
  endSession(condition: StreamErrorCondition, text?: string): void;
}

/** The service account as rules see it: one connection shared by every session of the proxy. */
export interface ServiceRequester {
  /** its bound full JID (its bare JID until it has bound once) */
  readonly jid: string;
  readonly bare: string;
  /**
   * An iq of the proxy's own, sent from the service account, as RuleContext.request: resolves with
   * the result iq; rejects with a StanzaError (the backend's error, or 'remote-server-timeout' when
   * no answer came in time, also while the account is disconnected, or 'internal-server-error' when
   * the backend refuses its login).
   */
  request(iq: Element, timeoutMs?: number): Promise<Element>;
}
