// Issue 9 point 1 against real ejabberd and Prosody: XMPP over WebSocket (RFC 7395) through the
// proxy. @xmpp/client's websocket transport logs in (SASL, then the restart as a new <open/> on the
// same socket), chats with a TCP client both ways; a raw WebSocket client checks the framing: the
// handshake (subprotocol, path, Origin), <open/> and <close/>, one element per message both ways
// with its namespaces declared, the limits and the stream errors.
import t from 'tap';
import net from 'node:net';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { startTestProxy } from './harness/proxy.js';
import { connect, waitFor, xml } from './harness/xmpp.js';
import { installGlobalWebSocket, OPEN, RawWs } from './harness/ws.js';
import type { Element } from 'ltx';

installGlobalWebSocket();

const USERS: Array<[string, string, string]> = [
  ['juliet', 'capulet.lit', 'secret'],
  ['romeo', 'capulet.lit', 'secret'],
  ['nurse', 'capulet.lit', 'secret'],
];

const LOCAL = { host: '127.0.0.1', port: 0 };

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`XMPP over WebSocket on ${kind}`, async (t) => {
    const backend = kind === 'ejabberd' ? await startEjabberd({ users: USERS }) : await startProsody({ users: USERS });
    t.teardown(() => backend.stop());
    // ws:// (no certificate: the client leg is plaintext), and wss:// with the test certificate
    const plain = await startTestProxy(backend, { tlsCert: undefined, tlsKey: undefined, listenWs: LOCAL, maxStanzaSize: 10_000 });
    t.teardown(() => plain.stop());
    const url = `ws://127.0.0.1:${plain.proxy.addresses!.ws!.port}/ws`;

    t.test('@xmpp/client over ws:// logs in, pings, and chats both ways with a TCP client', async (t) => {
      const juliet = await connect({ port: 0, service: url, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'web' });
      t.teardown(() => juliet.stop());
      t.equal(juliet.jid.toString(), 'juliet@capulet.lit/web', 'bound over WebSocket');
      const romeo = await connect({ port: plain.port, domain: 'capulet.lit', username: 'romeo', password: 'secret', resource: 'tcp', tls: false });
      t.teardown(() => romeo.stop());
      const pong = await juliet.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      t.equal(pong.attrs.type, 'result', 'ping answered');
      await juliet.send(xml('message', { to: 'romeo@capulet.lit/tcp', type: 'chat', id: 'w1' }, xml('body', {}, 'from the browser side')));
      const got = await waitFor(romeo, (s) => s.is('message') && s.getChildText('body') === 'from the browser side');
      t.equal(got.attrs.from, 'juliet@capulet.lit/web', 'the TCP client got it from the WebSocket one');
      await romeo.send(xml('message', { to: 'juliet@capulet.lit/web', type: 'chat', id: 't1' }, xml('body', {}, 'from the TCP side')));
      const back = await waitFor(juliet, (s: Element) => s.is('message') && s.getChildText('body') === 'from the TCP side');
      t.equal(back.attrs.from, 'romeo@capulet.lit/tcp', 'and the answer came back over WebSocket');
    });

    t.test('@xmpp/client over wss:// with the certificate', async (t) => {
      const secure = await startTestProxy(backend, { listenWs: LOCAL });
      t.teardown(() => secure.stop());
      const c = await connect({ port: 0, service: `wss://127.0.0.1:${secure.proxy.addresses!.ws!.port}/ws`, domain: 'capulet.lit', username: 'nurse', password: 'secret', resource: 'wss' });
      t.teardown(() => c.stop());
      t.equal(c.jid.toString(), 'nurse@capulet.lit/wss');
      const raw = await RawWs.connect(`wss://127.0.0.1:${secure.proxy.addresses!.ws!.port}/ws`);
      t.teardown(() => raw.close());
      raw.send(OPEN('capulet.lit'));
      const features = await raw.expect(/<stream:features/);
      t.notMatch(features, /starttls/, 'no STARTTLS over WebSocket (TLS is the URL\'s)');
      t.match(features, /<mechanism>PLAIN<\/mechanism>/);
    });

    t.test('the handshake: subprotocol xmpp, the path, no compression', async (t) => {
      const raw = await RawWs.connect(url);
      t.equal(raw.ws.protocol, 'xmpp', 'xmpp subprotocol answered');
      t.equal(raw.ws.extensions, '', 'no permessage-deflate');
      raw.close();
      await t.rejects(RawWs.connect(url, { protocols: ['chat'] }), { message: 'HTTP 400' }, 'no xmpp subprotocol: 400');
      await t.rejects(RawWs.connect(url.replace('/ws', '/other')), { message: 'HTTP 404' }, 'another path: 404');
      const res = await fetch(url.replace('ws:', 'http:'));
      t.equal(res.status, 426, 'a plain GET on the path: 426 Upgrade Required');
    });

    t.test('an upgrade request not finished within --header-timeout is cut off', async (t) => {
      const p = await startTestProxy(backend, { tlsCert: undefined, tlsKey: undefined, listenWs: LOCAL, headerTimeout: 1000 });
      t.teardown(() => p.stop());
      const started = Date.now();
      const sock = net.connect({ host: '127.0.0.1', port: p.proxy.addresses!.ws!.port });
      sock.on('error', () => undefined);
      sock.resume(); // read (and drop) the 408: a socket nobody reads never sees the close
      sock.write('GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n');
      await new Promise<void>((resolve) => sock.once('close', () => resolve()));
      const after = Date.now() - started;
      t.ok(after >= 900 && after < 4000, `closed after ${after} ms`);
    });

    t.test('Origin: only the allowed ones (and non-browsers, which send none)', async (t) => {
      const p = await startTestProxy(backend, { tlsCert: undefined, tlsKey: undefined, listenWs: LOCAL, wsPath: '/xmpp-websocket', wsOrigins: ['https://chat.capulet.lit'] });
      t.teardown(() => p.stop());
      const u = `ws://127.0.0.1:${p.proxy.addresses!.ws!.port}/xmpp-websocket`;
      await t.rejects(RawWs.connect(u, { origin: 'https://evil.example' }), { message: 'HTTP 403' }, 'another origin: 403');
      const ok = await RawWs.connect(u, { origin: 'https://chat.capulet.lit' });
      ok.close();
      const none = await RawWs.connect(u);
      none.close();
      t.pass('the allowed origin and no origin connect');
    });

    t.test('<open/> and <close/>, one element per message, namespaces declared on each', async (t) => {
      const raw = await RawWs.connect(url);
      t.teardown(() => raw.close());
      raw.send(OPEN('capulet.lit'));
      const open = await raw.expect(/^<open /);
      t.match(open, /xmlns='urn:ietf:params:xml:ns:xmpp-framing'/);
      t.match(open, /from='capulet.lit'/);
      t.match(open, /version='1.0'/);
      t.match(open, /id='[^']{8,}'/);
      const features = await raw.expect(/<stream:features/);
      t.match(features, /^<stream:features xmlns:stream='http:\/\/etherx.jabber.org\/streams'>.*<\/stream:features>$/s, 'features: one message, with their own xmlns:stream');
      t.equal(raw.messages.length, 2, 'two messages: <open/>, features');
      raw.send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`);
      await raw.expect(/^<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'\/>$/);
      t.equal(await raw.waitClosed(), 1000, 'the server closes the WebSocket after the <close/> exchange');
    });

    t.test('a logged-in raw session: stanzas carry xmlns=jabber:client, <close/> ends it', async (t) => {
      const raw = await RawWs.login(url, 'capulet.lit', 'juliet', 'secret', 'raw');
      t.teardown(() => raw.close());
      const n = raw.messages.length;
      raw.send(`<iq xmlns='jabber:client' type='get' id='p1' to='capulet.lit'><ping xmlns='urn:xmpp:ping'/></iq>`);
      const pong = await raw.expect(/id='p1'|id="p1"/, n);
      t.match(pong, /^<iq [^>]*xmlns=["']jabber:client["']/, 'the backend\'s answer gets the content namespace');
      for (const m of raw.messages) t.match(m, /^\s*<[^>]+>[\s\S]*$/, 'each message holds an element');
      raw.ws.ping();
      await new Promise<void>((resolve) => raw.ws.once('pong', () => resolve()));
      t.pass('a WebSocket ping is answered');
      raw.send(`<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>`);
      t.equal(await raw.waitClosed(), 1000);
    });

    const violations: Array<[string, string | Buffer, RegExp, string]> = [
      ['two elements in one message', `<presence xmlns='jabber:client'/><presence xmlns='jabber:client'/>`, /<bad-format /, 'bad-format'],
      ['half an element', `<message xmlns='jabber:client'><body>`, /<bad-format /, 'bad-format'],
      ['a comment', `<!-- hi -->`, /<restricted-xml /, 'restricted-xml'],
      ['a message over --max-stanza-size', `<message xmlns='jabber:client'><body>${'x'.repeat(12_000)}</body></message>`, /<policy-violation /, 'policy-violation'],
      ['a binary message', Buffer.from(`<presence xmlns='jabber:client'/>`), /<bad-format /, 'bad-format'],
      ['an undeclared prefix', `<foo:bar/>`, /<bad-namespace-prefix /, 'bad-namespace-prefix'],
    ];
    for (const [what, bad, re, condition] of violations) {
      t.test(`${what}: <${condition}/>, <close/>, the WebSocket closed`, async (t) => {
        const raw = await RawWs.login(url, 'capulet.lit', 'romeo', 'secret', `v${Math.random().toString(36).slice(2, 8)}`);
        t.teardown(() => raw.close());
        const n = raw.messages.length;
        if (typeof bad === 'string') raw.send(bad);
        else raw.ws.send(bad, { binary: true });
        const err = await raw.expect(/<stream:error/, n);
        t.match(err, re);
        t.match(err, /^<stream:error xmlns:stream='http:\/\/etherx.jabber.org\/streams'>/, 'the error declares its prefix');
        await raw.expect(/^<close /, n);
        t.equal(await raw.waitClosed(), 1000);
      });
    }

    t.test('before <open/>: an element is invalid-namespace (our <open/> first)', async (t) => {
      const raw = await RawWs.connect(url);
      t.teardown(() => raw.close());
      raw.send(`<presence xmlns='jabber:client'/>`);
      await raw.expect(/^<open /);
      await raw.expect(/<invalid-namespace /);
      t.equal(await raw.waitClosed(), 1000);
    });

    t.test('a message far over the limit is refused unread: close 1009', async (t) => {
      const raw = await RawWs.connect(url);
      t.teardown(() => raw.close());
      raw.send(OPEN('capulet.lit'));
      await raw.expect(/<stream:features/);
      raw.send('x'.repeat(10_000 + 64 * 1024 + 1));
      t.equal(await raw.waitClosed(), 1009, 'Message Too Big');
    });

    t.test('the backend leg over WebSocket too (--upstream ws://…): TCP and WebSocket clients log in and chat', async (t) => {
      const viaWs = await startTestProxy(backend, { upstream: { host: '127.0.0.1', port: 0, tls: false, ws: backend.wsUrl }, listenWs: LOCAL, tlsCert: undefined, tlsKey: undefined });
      t.teardown(() => viaWs.stop());
      const tcp = await connect({ port: viaWs.port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'up-ws', tls: false });
      t.teardown(() => tcp.stop());
      t.equal(tcp.jid.toString(), 'juliet@capulet.lit/up-ws', 'a TCP client bound through a WebSocket backend leg (SASL relayed, restart as <open/> upstream)');
      const web = await connect({ port: 0, service: `ws://127.0.0.1:${viaWs.proxy.addresses!.ws!.port}/ws`, domain: 'capulet.lit', username: 'romeo', password: 'secret', resource: 'up-ws' });
      t.teardown(() => web.stop());
      const pong = await web.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      t.equal(pong.attrs.type, 'result', 'WebSocket on both legs');
      await tcp.send(xml('message', { to: 'romeo@capulet.lit/up-ws', type: 'chat' }, xml('body', {}, 'over two WebSockets')));
      await waitFor(web, (s: Element) => s.is('message') && s.getChildText('body') === 'over two WebSockets');
      await web.send(xml('message', { to: 'juliet@capulet.lit/up-ws', type: 'chat' }, xml('body', {}, 'and back')));
      await waitFor(tcp, (s: Element) => s.is('message') && s.getChildText('body') === 'and back');
      t.pass('chat both ways');
    });

    t.test('a TCP session still works beside them', async (t) => {
      const c = await connect({ port: plain.port, domain: 'capulet.lit', username: 'nurse', password: 'secret', resource: 'tcp2', tls: false });
      t.teardown(() => c.stop());
      const pong = await c.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
      t.equal(pong.attrs.type, 'result');
    });
  });
}
