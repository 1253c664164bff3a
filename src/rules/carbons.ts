// XEP-0280 message carbons, served by the proxy: a pubsub-only backend has no mod_carboncopy. The
// received copies come from §6's notifications, the sent ones from the sender's proxy (chat.ts
// decides when a copy is due). This rule answers
// enable/disable per session and adds the feature to the server's disco#info, so that clients find it.
import type { Element } from 'ltx';
import { xml } from '../stream/xml.js';
import { NS_DISCO_INFO } from '../xmpp/ns.js';
import type { Rule, RuleContext } from './types.js';

export const NS_CARBONS = 'urn:xmpp:carbons:2';
const NS_FORWARD = 'urn:xmpp:forward:0';
const NS_HINTS = 'urn:xmpp:hints';

const ENABLED = 'carbons';
const DISCO = 'carbons-disco';

/** Does this session want a carbon of `m` (XEP-0280 §6: chat, or normal with a body; not private)? */
export function carbonsWanted(ctx: RuleContext, m: Element): boolean {
  return ctx.state.get(ENABLED) === true && carbonEligible(m);
}

/** Is `m` a message XEP-0280 §6 copies (chat, or normal with a body; not private, not no-copy)? */
export function carbonEligible(m: Element): boolean {
  if (m.getChild('private', NS_CARBONS) || m.getChild('no-copy', NS_HINTS)) return false;
  const type = m.attrs.type as string | undefined;
  return type === 'chat' || ((type === undefined || type === 'normal') && m.getChild('body') !== undefined);
}

/** A carbon (§7.3 received, §7.4 sent) of `m` for the session `to`, from the user's bare JID. */
export function carbonCopy(kind: 'sent' | 'received', bare: string, to: string, m: Element): Element {
  const inner = xml('message', { ...(m.attrs as Record<string, string>), xmlns: 'jabber:client' });
  inner.children = m.children;
  return xml('message', { from: bare, to, type: (m.attrs.type as string | undefined) ?? 'normal' }, xml(kind, { xmlns: NS_CARBONS }, xml('forwarded', { xmlns: NS_FORWARD }, inner)));
}

export const carbonsRule: Rule = {
  name: 'carbons',
  sees: { client: ['iq'], backend: ['iq'] },

  fromClient(s, ctx) {
    if (s.name !== 'iq') return false;
    const to = s.attrs.to;
    if (s.attrs.type === 'get' && to !== undefined && to.toLowerCase() === ctx.domain && s.childIs('query', NS_DISCO_INFO) && s.attrs.id) {
      if (s.el.getChild('query')?.attrs.node) return false;
      let ids = ctx.state.get(DISCO) as Set<string> | undefined;
      if (!ids) ctx.state.set(DISCO, (ids = new Set()));
      ids.add(s.attrs.id);
      return false; // the backend answers; fromBackend adds the feature
    }
    if (s.attrs.type !== 'set' || (to !== undefined && to.toLowerCase() !== ctx.bare)) return false;
    const on = s.childIs('enable', NS_CARBONS);
    if (!on && !s.childIs('disable', NS_CARBONS)) return false;
    if (on) ctx.state.set(ENABLED, true);
    else ctx.state.delete(ENABLED);
    ctx.toClient(xml('iq', { type: 'result', id: s.attrs.id ?? '', to: ctx.jid.toString() }));
    return true;
  },

  fromBackend(s, ctx) {
    const type = s.attrs.type;
    if (s.name !== 'iq' || (type !== 'result' && type !== 'error') || !s.attrs.id) return false;
    const ids = ctx.state.get(DISCO) as Set<string> | undefined;
    // an error answer ends the request too (it passes through as it is): else its id stayed in the
    // set for the session's life, and a later result with that id was taken for an answer
    if (!ids?.delete(s.attrs.id)) return false;
    if (ids.size === 0) ctx.state.delete(DISCO);
    if (type === 'error') return false;
    const el = s.el;
    const query = el.getChild('query', NS_DISCO_INFO);
    if (!query || query.getChildren('feature').some((f) => f.attrs.var === NS_CARBONS)) return false;
    query.children.push(xml('feature', { var: NS_CARBONS }));
    ctx.toClient(el);
    return true;
  },
};
