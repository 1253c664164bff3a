// RFC 6121 §4.6 directed presence: available or unavailable presence a client sends to one entity
// (a contact it shares presence with only for a while, a bot, a service, a MUC room of another
// server). It is outside XEP-0207's mapping, so it goes through the backend's normal routing, as the
// client wrote it but without its `from` (the backend stamps the bound JID; ejabberd even ends a stream
// that forges one). The proxy remembers each target it made available and sends it `unavailable`
// when the client broadcasts unavailable presence or its session ends (§4.6.3), before the backend leg
// closes, so the backend's own copy of that bookkeeping has nothing left to send.
//
// Presence to the user's own JID is broadcast presence (presence.ts), subscription presence has its
// own rule, a probe is the server's business (§4.3: the proxy probes at login), and a join of the
// proxy's own MUC services is §5's (muc.ts, earlier in the table); a join of another server's room
// gets service-unavailable here: a MUC presence must never reach the pubsub-only backend.
import { xml } from '../stream/xml.js';
import { bareOf, parseJid } from '../xmpp/jid.js';
import { NS_MUC } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { isSubscriptionType } from './subscription-states.js';
import type { Rule, RuleContext } from './types.js';

const KEY = 'directed';

function targetsOf(ctx: RuleContext): Set<string> | undefined {
  return ctx.state.get(KEY) as Set<string> | undefined;
}

/** Tell every entity that got directed available presence that the session is unavailable. */
function endAll(ctx: RuleContext): void {
  const targets = targetsOf(ctx);
  if (!targets) return;
  ctx.state.delete(KEY);
  for (const to of targets) ctx.toBackend(xml('presence', { to, type: 'unavailable' }));
}

export const directedPresenceRule: Rule = {
  name: 'directed-presence',
  sees: { client: ['presence'] },

  fromClient(s, ctx) {
    if (s.name !== 'presence') return false;
    const type = s.attrs.type;
    if (isSubscriptionType(type)) return false;
    const to = s.attrs.to;
    if (to === undefined || bareOf(to).toLowerCase() === ctx.bare) {
      if (type === 'unavailable') endAll(ctx); // and presence.ts publishes the broadcast
      return false;
    }
    if (type === 'error' || type === 'probe') return true; // errors about presence the proxy delivered; §4.3
    if (s.childIs('x', NS_MUC)) {
      ctx.toClient(errorReply(s.el, new StanzaError('service-unavailable', 'groupchat is not available yet'), ctx.domain));
      return true;
    }
    if (type !== undefined && type !== 'unavailable') {
      ctx.toClient(errorReply(s.el, new StanzaError('bad-request', `presence type '${type}'`), ctx.domain));
      return true;
    }
    const target = parseJid(to);
    if (!target) {
      ctx.toClient(errorReply(s.el, new StanzaError('jid-malformed'), ctx.domain));
      return true;
    }
    const key = target.toString();
    const el = s.el;
    const attrs: Record<string, string> = { ...(el.attrs as Record<string, string>), to: key };
    delete attrs.from;
    delete attrs.xmlns;
    const out = xml('presence', attrs);
    out.children = el.children;
    ctx.toBackend(out);
    let targets = targetsOf(ctx);
    if (type === undefined) {
      if (!targets) ctx.state.set(KEY, (targets = new Set()));
      targets.add(key);
    } else if (targets) {
      targets.delete(key);
      if (targets.size === 0) ctx.state.delete(KEY);
    }
    return true;
  },

  onClose(ctx) {
    endAll(ctx);
  },
};
