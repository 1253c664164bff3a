// Scenarios every backend's suite runs the same way.
import type { Test } from 'tap';
import type { Element } from 'ltx';
import { canonicalXml } from '../../src/stream/xml.js';
import { connect, HEADER, RawClient, waitFor, xml } from './xmpp.js';
import { readStream, type StreamAnswer } from './stream-reader.js';

/**
 * Juliet (password 'secret') sends Romeo (password 's3cret') a chat message with an extension
 * payload; it arrives as sent, `from` stamped by the backend. Payloads are compared in canonical form
 * (Prosody re-serializes attributes in its own order).
 */
export async function messagePassesUnchanged(t: Test, port: number): Promise<void> {
  const juliet = await connect({ port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'balcony' });
  const romeo = await connect({ port, domain: 'montague.lit', username: 'romeo', password: 's3cret', resource: 'orchard' });
  t.teardown(() => Promise.all([juliet.stop(), romeo.stop()]));
  const msg = xml(
    'message',
    { to: 'romeo@montague.lit/orchard', type: 'chat', id: 'm-1' },
    xml('body', {}, 'Wherefore art thou, Romeo? <&> ☾'),
    xml('thread', {}, 'th-1'),
    xml('x', { xmlns: 'urn:example:custom', a: "q'uo\"te" }, xml('deep', {}, xml('er', {}, 'text'))),
  );
  await juliet.send(msg);
  const got = await waitFor(romeo, (s) => s.name === 'message' && s.attrs.id === 'm-1');
  t.equal(got.attrs.from, 'juliet@capulet.lit/balcony', 'from stamped by the backend');
  t.equal(got.attrs.to, 'romeo@montague.lit/orchard');
  t.equal(got.attrs.type, 'chat');
  t.equal(got.getChildText('body'), 'Wherefore art thou, Romeo? <&> ☾');
  t.equal(got.getChildText('thread'), 'th-1');
  t.equal(canonicalXml(got.getChild('x', 'urn:example:custom')!), canonicalXml(msg.getChild('x')!), 'extension payload unchanged');
}

/**
 * @xmpp/client logs in through the proxy with `mechanism` over STARTTLS, binds, and gets answers to
 * a server ping and to disco#info (the backend's features). Returns the disco#info query.
 */
export async function loginPingDisco(t: Test, port: number, mechanism: string): Promise<Element> {
  const c = await connect({ port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'balcony', mechanism });
  t.teardown(() => c.stop());
  t.equal(c.jid.toString(), 'juliet@capulet.lit/balcony', 'bound full JID');
  t.ok(c.isSecure(), 'client leg is TLS');
  const pong = await c.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
  t.equal(pong.attrs.type, 'result', 'server ping answered');
  t.equal(pong.attrs.from, 'capulet.lit');
  const info = await c.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
  const query = info.getChild('query')!;
  const features = query.getChildren('feature').map((f: Element) => f.attrs.var as string);
  t.ok(features.includes('http://jabber.org/protocol/disco#info'), 'disco#info answered by the backend');
  t.ok(features.includes('urn:xmpp:ping'), 'backend features visible');
  return query;
}

/**
 * A raw client opens a stream to `port`, checks that STARTTLS is offered, upgrades (verifying the
 * test certificate for capulet.lit) and returns what came after TLS (stream header and features).
 */
export async function featuresAfterStartTls(t: Test, port: number): Promise<string> {
  const raw = await RawClient.connect(port);
  t.teardown(() => raw.close());
  raw.send(HEADER('capulet.lit'));
  await raw.expect(/<\/stream:features>/);
  t.match(raw.data, /<starttls xmlns=["']urn:ietf:params:xml:ns:xmpp-tls["']/, 'STARTTLS offered');
  await raw.startTls('capulet.lit');
  raw.send(HEADER('capulet.lit'));
  await raw.expect(/<stream:features>.*<\/stream:features>/s);
  return raw.data;
}

/** The SASL condition @xmpp/client reports for a failed login (undefined if it logged in). */
export function loginFailure(port: number, username: string, password: string, mechanism: string): Promise<string | undefined> {
  return connect({ port, domain: 'capulet.lit', username, password, mechanism }).then(
    async (c) => {
      await c.stop();
      return undefined;
    },
    (e: { condition?: string }) => e.condition ?? String(e),
  );
}

/** A wrong password (and an unknown user) is a SASL failure at the client, with PLAIN and SCRAM-SHA-1. */
export async function wrongPasswordFails(t: Test, port: number): Promise<void> {
  for (const mechanism of ['PLAIN', 'SCRAM-SHA-1']) {
    t.equal(await loginFailure(port, 'juliet', 'wrong', mechanism), 'not-authorized', `${mechanism}: SASL failure not-authorized`);
  }
  t.equal(await loginFailure(port, 'nobody', 'secret', 'SCRAM-SHA-1'), 'not-authorized', 'unknown user: not-authorized');
}

const STREAM_ATTRS = "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='capulet.lit' version='1.0'";

/** Bad restart headers and the stream error each gets. */
const BAD_RESTART_HEADERS: Array<[string, string, string]> = [
  ['a DOCTYPE with entity declarations', `<?xml version='1.0'?><!DOCTYPE stream:stream [<!ENTITY lol 'lol'>]><stream:stream ${STREAM_ATTRS}>`, 'restricted-xml'],
  ['a wrong stream namespace', "<stream:stream xmlns='jabber:client' xmlns:stream='urn:example:not-streams' to='capulet.lit' version='1.0'>", 'invalid-namespace'],
  ['a 500 KB attribute', `<stream:stream ${STREAM_ATTRS} x='${'a'.repeat(500_000)}'>`, 'policy-violation'],
];

/** What a raw client got is one well-formed stream: our header, `children`, the error `condition` in it, closed. */
export function isErrorStream(t: Test, data: string, children: string[], condition: string, what: string): void {
  let answer: StreamAnswer;
  try {
    answer = readStream(data);
  } catch (err) {
    t.fail(`${what}: ${(err as Error).message}; received: ${data.slice(0, 300)}`);
    return;
  }
  t.ok(answer.isStream, `${what}: a stream header first`);
  t.same(answer.children, children, `${what}: then ${children.join(', ')}, then </stream:stream>`);
  t.equal(answer.condition, condition, `${what}: ${condition}`);
}

/**
 * A bad header at a restart gets what a bad first header gets (RFC 6120 §4.9.1.1): a new stream
 * header of ours, the error, </stream:stream>; after SASL success (each bad header) and after STARTTLS.
 */
export async function badRestartHeaders(t: Test, port: number): Promise<void> {
  for (const [what, header, condition] of BAD_RESTART_HEADERS) {
    const raw = await RawClient.authenticated(port, 'capulet.lit', 'juliet', 'secret');
    t.teardown(() => raw.close());
    raw.send(header);
    await raw.waitClosed();
    isErrorStream(t, raw.data, ['stream:error'], condition, `after SASL, ${what}`);
  }
  const raw = await RawClient.connect(port);
  t.teardown(() => raw.close());
  raw.send(HEADER('capulet.lit'));
  await raw.expect(/<\/stream:features>/);
  await raw.startTls('capulet.lit');
  const [what, header, condition] = BAD_RESTART_HEADERS[0]!;
  raw.send(header);
  await raw.waitClosed();
  isErrorStream(t, raw.data, ['stream:error'], condition, `after STARTTLS, ${what}`);
}
