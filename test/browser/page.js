// The browser side of browser.test.ts: an XMPP client made of @xmpp/client's browser bundle
// (window.XMPP), driven by the test through these functions. Everything the client receives is
// kept as XML text in `received`, for the test to look for.
/* global XMPP */
const { client, xml } = XMPP;
let xmpp;
window.received = [];

window.login = async (service, domain, username, password, resource) => {
  xmpp = client({ service, domain, username, password, resource });
  xmpp.reconnect.stop();
  xmpp.on('stanza', (s) => window.received.push(s.toString()));
  xmpp.on('error', (err) => window.received.push(`error: ${err.message}`));
  const jid = await xmpp.start();
  return jid.toString();
};

window.rosterGet = async () => {
  const res = await xmpp.iqCaller.request(xml('iq', { type: 'get' }, xml('query', { xmlns: 'jabber:iq:roster' })));
  return res.toString();
};

window.presence = (attrs, status) => xmpp.send(xml('presence', attrs, status ? xml('status', {}, status) : null));

window.chat = (to, body) => xmpp.send(xml('message', { to, type: 'chat' }, xml('body', {}, body)));

window.join = (roomNick) => xmpp.send(xml('presence', { to: roomNick }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));

window.instantRoom = async (room) => {
  const res = await xmpp.iqCaller.request(
    xml('iq', { type: 'set', to: room }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))),
  );
  return res.attrs.type;
};

window.groupchat = (room, body) => xmpp.send(xml('message', { to: room, type: 'groupchat' }, xml('body', {}, body)));

window.logout = () => xmpp.stop();
