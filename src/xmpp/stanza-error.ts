// RFC 6120 §8.3 stanza errors: building the error reply to a stanza, and reading one.
import type { Element } from 'ltx';
import { NS_STANZAS } from './ns.js';
import { xml } from '../stream/xml.js';

export type StanzaErrorType = 'auth' | 'cancel' | 'continue' | 'modify' | 'wait';

/** RFC 6120 §8.3.3: each defined condition with its usual error type. */
export const CONDITION_TYPE: Record<string, StanzaErrorType> = {
  'bad-request': 'modify',
  conflict: 'cancel',
  'feature-not-implemented': 'cancel',
  forbidden: 'auth',
  gone: 'cancel',
  'internal-server-error': 'cancel',
  'item-not-found': 'cancel',
  'jid-malformed': 'modify',
  'not-acceptable': 'modify',
  'not-allowed': 'cancel',
  'not-authorized': 'auth',
  'policy-violation': 'modify',
  'recipient-unavailable': 'wait',
  redirect: 'modify',
  'registration-required': 'auth',
  'remote-server-not-found': 'cancel',
  'remote-server-timeout': 'wait',
  'resource-constraint': 'wait',
  'service-unavailable': 'cancel',
  'subscription-required': 'auth',
  'undefined-condition': 'cancel',
  'unexpected-request': 'wait',
};

/** The error a proxy-side failure becomes when reported to the client. */
export class StanzaError extends Error {
  constructor(
    readonly condition: string,
    readonly text?: string,
    readonly type: StanzaErrorType = CONDITION_TYPE[condition] ?? 'cancel',
    /** the error element as received (for relaying a backend error unchanged) */
    readonly element?: Element,
  ) {
    super(text ? `${condition}: ${text}` : condition);
    this.name = 'StanzaError';
  }

  /** Read the <error/> child of an error stanza. */
  static fromStanza(stanza: Element): StanzaError {
    const error = stanza.getChild('error');
    const cond = error?.children.find((c): c is Element => typeof c !== 'string' && c.attrs.xmlns === NS_STANZAS && c.name !== 'text');
    const text = error?.getChildText('text', NS_STANZAS) ?? undefined;
    // an answer, not a failure of the proxy's code: its stack would say nothing, and capturing one
    // was 5% of the proxy's CPU in logins (item-not-found for every missing node, bench (e))
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return new StanzaError(cond?.name ?? 'undefined-condition', text, (error?.attrs.type as StanzaErrorType) ?? 'cancel', error);
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

export function errorElement(condition: string, text?: string, type?: StanzaErrorType): Element {
  return xml(
    'error',
    { type: type ?? CONDITION_TYPE[condition] ?? 'cancel' },
    xml(condition, { xmlns: NS_STANZAS }),
    text ? xml('text', { xmlns: NS_STANZAS, 'xml:lang': 'en' }, text) : null,
  );
}

/**
 * The error reply to `stanza` (RFC 6120 §8.3.1): same name and id, from/to swapped, type='error'.
 * `from` defaults to the original recipient, or `replyFrom` when the stanza had no `to`.
 */
export function errorReply(stanza: Element, err: StanzaError | string, replyFrom?: string): Element {
  const e = typeof err === 'string' ? new StanzaError(err) : err;
  const attrs: Record<string, string> = { type: 'error' };
  const from = (stanza.attrs.to as string | undefined) ?? replyFrom;
  if (from) attrs.from = from;
  if (stanza.attrs.from) attrs.to = stanza.attrs.from as string;
  if (stanza.attrs.id) attrs.id = stanza.attrs.id as string;
  return xml(stanza.name, attrs, e.element ?? errorElement(e.condition, e.text, e.type));
}

/** RFC 6120 §8.3.1: never answer an error with an error. */
export function mayBounce(stanza: Element): boolean {
  return stanza.attrs.type !== 'error' && !(stanza.name === 'iq' && stanza.attrs.type === 'result');
}
