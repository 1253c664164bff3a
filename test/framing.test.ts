// The two framings under XmlStream (issue 9 point 1): what each sends for a header, an element, an
// error and the end of stream, and how WebSocket input becomes stream events (framing-ws.ts), over
// a real WebSocket pair on loopback, without any backend.
import t, { type Test } from 'tap';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';
import { XmlStream, type StreamEvents } from '../src/stream/connection.js';
import { NS_FRAMING, WsFraming, declareNamespaces } from '../src/stream/framing-ws.js';
import { streamHeader } from '../src/stream/framing-tcp.js';
import type { StreamError } from '../src/stream/errors.js';
import type { Stanza } from '../src/stream/stanza.js';

const LIMITS = { maxSize: 1000, maxDepth: 8 };

t.test('declareNamespaces: what a TCP stream header would have declared, on the element itself', async (t) => {
  const cases: Array<[string, string]> = [
    [`<message to='a@b'><body>x</body></message>`, `<message xmlns='jabber:client' to='a@b'><body>x</body></message>`],
    [`<presence/>`, `<presence xmlns='jabber:client'/>`],
    [`<iq id='a>b/c' to="x/y"/>`, `<iq xmlns='jabber:client' id='a>b/c' to="x/y"/>`],
    [`<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`, `<stream:features xmlns:stream='http://etherx.jabber.org/streams'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></stream:features>`],
  ];
  for (const [raw, want] of cases) t.equal(declareNamespaces(raw), want, raw);
  for (const same of [
    `<message xmlns='jabber:client' to='a@b'/>`,
    `<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>`,
    `<stream:error xmlns:stream='http://etherx.jabber.org/streams'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-streams'/></stream:error>`,
    `<foo:bar xmlns:foo='urn:x'/>`,
    `<open xmlns='${NS_FRAMING}' to='x'/>`,
  ]) t.equal(declareNamespaces(same), same, `unchanged: ${same}`);
});

t.test('TCP: the stream header and footer as before', async (t) => {
  t.equal(streamHeader({ to: 'capulet.lit', version: '1.0', 'xml:lang': "it's" }), `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='capulet.lit' version='1.0' xml:lang='it&apos;s'>`);
});

/** An XmlStream over the server side of a loopback WebSocket; the client side records messages. */
async function pair(t: Test) {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  t.teardown(() => {
    for (const c of wss.clients) c.terminate();
    return new Promise<void>((r) => wss.close(() => r()));
  });
  await new Promise<void>((r) => wss.once('listening', () => r()));
  const events: string[] = [];
  const starts: Array<Record<string, string>> = [];
  const handler: StreamEvents = {
    onStreamStart: (name, attrs) => {
      events.push(`start ${name}`);
      starts.push(attrs);
    },
    onElement: (s: Stanza) => events.push(`element ${s.name}`),
    onStreamEnd: () => events.push('end'),
    onWhitespace: () => events.push('whitespace'),
    onViolation: (e: StreamError) => events.push(`violation ${e.condition}`),
    onClose: () => events.push('closed'),
  };
  const accepted = new Promise<XmlStream>((resolve) => wss.once('connection', (ws) => resolve(new XmlStream(new WsFraming(ws, LIMITS), handler))));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`, 'xmpp');
  t.teardown(() => client.terminate());
  const got: string[] = [];
  let code: number | undefined;
  client.on('message', (d) => got.push(String(d)));
  client.on('close', (c) => (code = c));
  await new Promise<void>((r) => client.once('open', () => r()));
  const stream = await accepted;
  const until = async (pred: () => boolean) => {
    for (let i = 0; i < 200 && !pred(); i++) await new Promise((r) => setTimeout(r, 10));
    t.ok(pred(), 'in time');
  };
  return { stream, client, events, starts, got, code: () => code, until };
}

t.test('WebSocket: <open/> is the stream header, with the content namespace RFC 7395 implies', async (t) => {
  const { stream, client, events, starts, got, until } = await pair(t);
  client.send(`<open xmlns='${NS_FRAMING}' to='capulet.lit' version='1.0' xml:lang='fr'/>`);
  await until(() => events.length === 1);
  t.same(events, ['start stream:stream']);
  t.same(starts[0], { to: 'capulet.lit', version: '1.0', 'xml:lang': 'fr', xmlns: 'jabber:client', 'xmlns:stream': 'http://etherx.jabber.org/streams' });
  stream.sendHeader({ id: 'abc', from: 'capulet.lit', version: '1.0' });
  stream.sendRaw(`<stream:features><mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/></stream:features>`);
  await until(() => got.length === 2);
  t.equal(got[0], `<open xmlns='${NS_FRAMING}' id='abc' from='capulet.lit' version='1.0'/>`);
  t.match(got[1], /^<stream:features xmlns:stream=/, 'each unit its own message, even when sent in one tick');
  client.send('  ');
  client.send(`<presence xmlns='jabber:client'/>`);
  await until(() => events.length === 3);
  t.same(events.slice(1), ['whitespace', 'element presence']);
  // after SASL success: the next thing must be a new <open/>
  stream.restart();
  client.send(`<presence xmlns='jabber:client'/>`);
  await until(() => events.length === 4);
  t.equal(events[3], 'violation invalid-namespace');
});

t.test('WebSocket: a restart takes a new <open/> on the same socket', async (t) => {
  const { stream, client, events, until } = await pair(t);
  client.send(`<open xmlns='${NS_FRAMING}' to='capulet.lit' version='1.0'/>`);
  await until(() => events.length === 1);
  stream.restart();
  client.send(`<open xmlns='${NS_FRAMING}' to='capulet.lit' version='1.0'/>`);
  client.send(`<iq xmlns='jabber:client' type='set' id='b'/>`);
  await until(() => events.length === 3);
  t.same(events, ['start stream:stream', 'start stream:stream', 'element iq']);
});

t.test('WebSocket: the polite close is <close/> both ways, then the server closes with 1000', async (t) => {
  const { stream, client, events, got, code, until } = await pair(t);
  client.send(`<open xmlns='${NS_FRAMING}' to='capulet.lit' version='1.0'/>`);
  await until(() => events.length === 1);
  stream.close();
  await until(() => got.length === 1);
  t.equal(got[0], `<close xmlns='${NS_FRAMING}'/>`);
  client.send(`<close xmlns='${NS_FRAMING}'/>`);
  await until(() => code() !== undefined);
  t.equal(code(), 1000);
  t.same(events, ['start stream:stream', 'closed'], 'the peer\'s answering <close/> is no new end event');
});

t.test('WebSocket: a stream error before the header gets our <open/> first, declares its prefix, closes', async (t) => {
  const { stream, got, code, until } = await pair(t);
  stream.error('host-unknown', 'no such domain', { id: 'x', from: 'localhost', version: '1.0' });
  await until(() => code() !== undefined);
  t.equal(got.length, 3);
  t.match(got[0], /^<open /);
  t.equal(got[1], `<stream:error xmlns:stream='http://etherx.jabber.org/streams'><host-unknown xmlns='urn:ietf:params:xml:ns:xmpp-streams'/><text xmlns='urn:ietf:params:xml:ns:xmpp-streams'>no such domain</text></stream:error>`);
  t.equal(got[2], `<close xmlns='${NS_FRAMING}'/>`);
  t.equal(code(), 1000);
});

t.test('WebSocket: input rules (one element per message, limits, restricted XML)', async (t) => {
  const bad: Array<[string, string]> = [
    [`<a/><b/>`, 'bad-format'],
    [`<a>`, 'bad-format'],
    [`text`, 'bad-format'],
    [`<a>${'x'.repeat(1001)}</a>`, 'policy-violation'],
    [`<a><b><c><d><e><f><g><h><i/></h></g></f></e></d></c></b></a>`, 'policy-violation'],
    [`<!DOCTYPE a>`, 'restricted-xml'],
    [`<a>&ent;</a>`, 'restricted-xml'],
    [`<a>\u0001</a>`, 'not-well-formed'],
    [`</a>`, 'not-well-formed'],
  ];
  for (const [msg, condition] of bad) {
    const { client, events, until } = await pair(t);
    client.send(`<open xmlns='${NS_FRAMING}' to='capulet.lit' version='1.0'/>`);
    client.send(msg);
    await until(() => events.length === 2);
    t.equal(events[1], `violation ${condition}`, msg.slice(0, 40));
  }
});
