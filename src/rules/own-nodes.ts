// The proxy's own nodes (rosters, inboxes, delivery markers, chat and room nodes: every name under
// `xep207-proxy/`) are the mapping's storage, not something a client may read or write with its own
// pubsub requests. Some must be open on the backend (a room's occupants node lists real JIDs and is
// `open` so that every proxy instance can work on it), so a client's raw XEP-0060 request naming one
// gets `forbidden` from the proxy instead of passing through. The user's own `presence` node (§3) is
// the roster's storage too (its subscriptions are the roster, §4): a client's owner request changing
// it (configure, delete, purge, subscriptions, affiliations) would open the user's presence to anyone
// or lose the roster, so an owner `set` naming it on the user's own PEP service is refused as well;
// reading it (items, configure get) passes. A disco#info or disco#items query naming one of the
// proxy's nodes (XEP-0060 §5.3, §5.5: its metadata and its items' ids) is refused as well. Other
// pubsub traffic (PEP, the user's own nodes on any service) passes as before. A disco#items listing
// of a service's nodes (XEP-0060 §5.2: the user's PEP service, the pubsub service) comes back without
// the proxy's nodes in it: a client browsing its account or the pubsub service sees the nodes a
// server's own would have, not the mapping's storage (an RSM count in such an answer is the
// backend's).
import type { Element } from 'ltx';
import { NS_DISCO_INFO, NS_DISCO_ITEMS, NS_PUBSUB, NS_PUBSUB_OWNER } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import { NODE_PRESENCE } from './account.js';
import { toOwnService } from './pep.js';
import type { Rule } from './types.js';

export const OWN_NODE_PREFIX = 'xep207-proxy/';

function namesOwnNode(el: Element): boolean {
  for (const c of el.children) {
    if (typeof c === 'string') continue;
    if (isOwnNode(c.attrs.node)) return true;
    if (namesOwnNode(c)) return true;
  }
  return false;
}

function namesNode(el: Element, name: string): boolean {
  for (const c of el.children) if (typeof c !== 'string' && c.attrs.node === name) return true;
  return false;
}

export const ownNodesRule: Rule = {
  name: 'own-nodes',
  sees: { client: ['iq'], backend: ['iq'] },

  fromClient(s, ctx) {
    if (s.name !== 'iq' || (s.attrs.type !== 'get' && s.attrs.type !== 'set')) return false;
    const pubsub = s.childName === 'pubsub' && (s.childNs === NS_PUBSUB || s.childNs === NS_PUBSUB_OWNER);
    if (!pubsub && !(s.childName === 'query' && (s.childNs === NS_DISCO_ITEMS || s.childNs === NS_DISCO_INFO))) return false;
    if (s.childNs === NS_PUBSUB_OWNER && s.attrs.type === 'set' && toOwnService(ctx, s.attrs.to)) {
      const owner = s.el.getChild('pubsub', NS_PUBSUB_OWNER);
      if (owner && namesNode(owner, NODE_PRESENCE)) {
        ctx.toClient(errorReply(s.el, new StanzaError('forbidden', 'the presence node is kept by the server'), ctx.domain));
        return true;
      }
    }
    // the cheap look first: the prefix in the bytes, or a character reference (XML 1.0 §4.1: `&#x2F;`
    // is a `/` to the backend) that could spell it otherwise
    if (!s.raw.includes(OWN_NODE_PREFIX) && !s.raw.includes('&#')) return false;
    const el = s.el;
    if (!namesOwnNode(el)) return false;
    ctx.toClient(errorReply(el, new StanzaError('forbidden', "the proxy's own node"), ctx.domain));
    return true;
  },

  fromBackend(s, ctx) {
    // the rules' own requests are answered before the lane (the session's tracker): what comes here
    // is an answer to the client's own query
    if (s.attrs.type !== 'result' || s.childName !== 'query' || s.childNs !== NS_DISCO_ITEMS) return false;
    if (!s.raw.includes(OWN_NODE_PREFIX)) return false;
    const el = s.el;
    const query = el.getChild('query', NS_DISCO_ITEMS);
    if (!query) return false;
    query.children = query.children.filter((c) => typeof c === 'string' || c.name !== 'item' || !isOwnNode(c.attrs.node));
    ctx.toClient(el);
    return true;
  },
};

/** Is `node` (an attribute's value, if any) one of the proxy's own nodes? */
export function isOwnNode(node: unknown): boolean {
  return typeof node === 'string' && node.startsWith(OWN_NODE_PREFIX);
}
