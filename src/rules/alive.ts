// "Is this session still there?": an iq only proxy sessions answer. The backend answers an iq to a
// full JID whose session is gone with an error (the session's proxy instance died without a word, so
// nothing it published was taken back); a session behind a proxy answers it itself. Used by presence
// (stale items of presence nodes, presence.ts) and by group chat (occupants of a dead instance,
// muc.ts: the query then names the room and nick, and only a session in that room under that nick
// says yes).
import { xml } from '../stream/xml.js';
import { StanzaError } from '../xmpp/stanza-error.js';
import type { RuleContext } from './types.js';

export const NS_ALIVE = 'urn:xep207-proxy:alive:0';

/** How long an answer may take; none in time counts as alive. */
export const ALIVE_TIMEOUT_MS = 5000;

/**
 * Is the session of `fullJid` still there (and, with `attrs`, does it say yes to them)? No answer in
 * time counts as alive: better a stale presence than a lost one.
 */
export function isAlive(ctx: RuleContext, fullJid: string, attrs: Record<string, string> = {}): Promise<boolean> {
  return ctx
    .request(xml('iq', { type: 'get', to: fullJid }, xml('alive', { xmlns: NS_ALIVE, ...attrs })), ALIVE_TIMEOUT_MS)
    .then(() => true, (err: unknown) => !(err instanceof StanzaError) || err.condition === 'remote-server-timeout');
}
