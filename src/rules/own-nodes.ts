// The proxy's own nodes (rosters, inboxes, delivery markers, chat and room nodes: every name under
// `xep207-proxy/`) are the mapping's storage, not something a client may read or write with its own
// pubsub requests. Some must be open on the backend (a room's occupants node lists real JIDs and is
// `open` so that every proxy instance can work on it), so a client's raw XEP-0060 request naming one
// gets `forbidden` from the proxy instead of passing through. Other pubsub traffic (PEP, the user's
// own nodes on any service) passes as before.
import type { Element } from 'ltx';
import { NS_PUBSUB, NS_PUBSUB_OWNER } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import type { Rule } from './types.js';

export const OWN_NODE_PREFIX = 'xep207-proxy/';

function namesOwnNode(el: Element): boolean {
  for (const c of el.children) {
    if (typeof c === 'string') continue;
    const node = c.attrs.node;
    if (typeof node === 'string' && node.startsWith(OWN_NODE_PREFIX)) return true;
    if (namesOwnNode(c)) return true;
  }
  return false;
}

export const ownNodesRule: Rule = {
  name: 'own-nodes',
  sees: { client: ['iq'] },

  fromClient(s, ctx) {
    if (s.name !== 'iq' || (s.attrs.type !== 'get' && s.attrs.type !== 'set')) return false;
    if (s.childName !== 'pubsub' || (s.childNs !== NS_PUBSUB && s.childNs !== NS_PUBSUB_OWNER)) return false;
    if (!s.raw.includes(OWN_NODE_PREFIX)) return false; // the cheap look first
    const el = s.el;
    if (!namesOwnNode(el)) return false;
    ctx.toClient(errorReply(el, new StanzaError('forbidden', "the proxy's own node"), ctx.domain));
    return true;
  },
};
