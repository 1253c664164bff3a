// XEP-0199 client-to-server ping. A client's ping to its own server (no `to`, or `to` its domain) is
// the client asking "is my whole path alive?". The proxy answers it only after the backend answered
// a ping of the proxy's own, so the answer covers proxy and backend; if the backend does not answer
// in time the client gets remote-server-timeout (and its usual reconnect logic can act).
// Pings to anybody else pass through untouched.
import { xml } from '../stream/xml.js';
import { NS_PING } from '../xmpp/ns.js';
import { StanzaError, errorReply } from '../xmpp/stanza-error.js';
import type { Rule } from './types.js';

export const pingRule: Rule = {
  name: 'ping',
  sees: { client: ['iq'] },
  fromClient(s, ctx) {
    if (s.name !== 'iq' || s.attrs.type !== 'get' || !s.childIs('ping', NS_PING)) return false;
    const to = s.attrs.to;
    if (to !== undefined && to.toLowerCase() !== ctx.domain) return false;
    const ping = xml('iq', { type: 'get', to: ctx.domain }, xml('ping', { xmlns: NS_PING }));
    return ctx.request(ping).then(
      () => {
        ctx.toClient(xml('iq', { type: 'result', id: s.attrs.id ?? '', from: ctx.domain, to: ctx.jid.toString() }));
        return true;
      },
      (err: unknown) => {
        const e = err instanceof StanzaError ? err : new StanzaError('remote-server-timeout');
        ctx.toClient(errorReply(s.el, new StanzaError(e.condition, e.text), ctx.domain));
        return true;
      },
    );
  },
};
