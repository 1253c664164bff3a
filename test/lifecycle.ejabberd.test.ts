// Lifecycle against a real ejabberd: who closes what when either side goes away, stream errors from
// the backend reaching the client, negotiation time-outs.
import t from 'tap';
import { startEjabberd } from './harness/ejabberd.js';
import { startTestProxy } from './harness/proxy.js';
import { startCapture } from './harness/capture.js';
import { connect, xml, RawClient, HEADER } from './harness/xmpp.js';

t.test('lifecycle on ejabberd', async (t) => {
  const backend = await startEjabberd({ users: [['juliet', 'capulet.lit', 'secret'], ['romeo', 'montague.lit', 'secret']] });
  t.teardown(() => backend.stop());

  /** a proxy whose backend traffic is recorded (plaintext backend leg) */
  async function recorded(overrides = {}) {
    const cap = await startCapture(backend.host, backend.plainPort!);
    const p = await startTestProxy({ host: '127.0.0.1', port: cap.port }, { upstreamTls: 'off', ...overrides });
    t.teardown(async () => {
      await p.stop();
      await cap.stop();
    });
    return { cap, p };
  }

  t.test('client closes its stream: the backend stream is closed cleanly, then the client\'s', async (t) => {
    const { cap, p } = await recorded();
    const raw = await RawClient.login(p.port, 'capulet.lit', 'juliet', 'secret', 'closing');
    raw.send('</stream:stream>');
    await raw.expect(/<\/stream:stream>/);
    await raw.waitClosed();
    await waitUntil(() => /<\/stream:stream>$/.test(cap.toBackend()), 'proxy sent </stream:stream> to the backend');
    await waitUntil(() => /<\/stream:stream>/.test(cap.fromBackend()), 'the backend closed its side');
    await waitUntil(() => p.proxy.sessions.size === 0, 'session gone');
    t.pass('both streams closed');
  });

  t.test('client socket dies: the backend stream is still closed cleanly', async (t) => {
    const { cap, p } = await recorded();
    const raw = await RawClient.login(p.port, 'capulet.lit', 'juliet', 'secret', 'dying');
    raw.socket.destroy();
    await waitUntil(() => /<\/stream:stream>$/.test(cap.toBackend()), 'proxy sent </stream:stream> to the backend');
    await waitUntil(() => p.proxy.sessions.size === 0, 'session gone');
    t.pass('closed');
  });

  t.test('the backend ends the session with a stream error: the client gets the same error', async (t) => {
    const p = await startTestProxy(backend);
    t.teardown(() => p.stop());
    const first = await RawClient.login(p.port, 'capulet.lit', 'juliet', 'secret', 'same');
    // the same resource again: ejabberd replaces the first session with <conflict/>
    const second = await connect({ port: p.port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'same' });
    t.teardown(() => second.stop());
    await first.expect(/<stream:error><conflict xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']/);
    await first.expect(/<\/stream:stream>/);
    await first.waitClosed();
    const pong = await second.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    t.equal(pong.attrs.type, 'result', 'the new session works');
  });

  t.test('the backend connection breaks: remote-connection-failed, then close', async (t) => {
    const { cap, p } = await recorded();
    const raw = await RawClient.login(p.port, 'capulet.lit', 'juliet', 'secret', 'cut');
    await cap.stop(); // every relayed connection is destroyed: the backend "crashed"
    await raw.expect(/<stream:error><remote-connection-failed/);
    await raw.waitClosed();
    t.pass('client told and closed');
  });

  t.test('negotiation time-out: a client that never finishes gets connection-timeout', async (t) => {
    const p = await startTestProxy(backend, { negotiationTimeout: 800 });
    t.teardown(() => p.stop());
    const idle = await RawClient.connect(p.port);
    const started = Date.now();
    await idle.expect(/<stream:stream [^>]*>.*<stream:error><connection-timeout/s, 5000);
    await idle.waitClosed();
    t.ok(Date.now() - started >= 700, 'not before the deadline');
    // slowloris: a byte at a time keeps arriving, but the deadline is absolute
    const slow = await RawClient.connect(p.port);
    const header = HEADER('capulet.lit');
    let i = 0;
    const drip = setInterval(() => {
      if (i < header.length && !slow.closed) slow.send(header[i++]!);
    }, 50);
    t.teardown(() => clearInterval(drip));
    await slow.expect(/<stream:error><connection-timeout/, 5000);
    await slow.waitClosed();
    clearInterval(drip);
    t.ok(i < header.length, 'cut off while still dripping the header');
  });

  t.test('a client that authenticates but never binds is cut off too', async (t) => {
    const p = await startTestProxy(backend, { negotiationTimeout: 1500 });
    t.teardown(() => p.stop());
    const raw = await RawClient.connect(p.port);
    raw.send(HEADER('capulet.lit'));
    await raw.expect(/<\/stream:features>/);
    raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${Buffer.from('\0juliet\0secret').toString('base64')}</auth>`);
    await raw.expect(/<success/);
    await raw.expect(/<stream:error><connection-timeout/, 5000);
    await raw.waitClosed();
    t.pass('closed');
  });

  t.test('stream header errors', async (t) => {
    const p = await startTestProxy(backend);
    t.teardown(() => p.stop());
    const cases: Array<[string, string]> = [
      ["<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='capulet.lit' version='1.0'>", 'invalid-namespace'],
      ["<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' version='1.0'>", 'host-unknown'],
      ["<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='capulet.lit'>", 'unsupported-version'],
      ["<stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='nowhere.invalid' version='1.0'>", 'host-unknown'],
    ];
    for (const [header, condition] of cases) {
      const raw = await RawClient.connect(p.port);
      raw.send(header);
      await raw.expect(new RegExp(`<stream:stream [^>]*>.*<stream:error><${condition} `, 's'));
      await raw.waitClosed();
      t.pass(condition);
    }
  });

  t.test('stanzas before authentication: not-authorized', async (t) => {
    const p = await startTestProxy(backend, { tlsCert: undefined, tlsKey: undefined });
    t.teardown(() => p.stop());
    const raw = await RawClient.connect(p.port);
    raw.send(HEADER('capulet.lit'));
    await raw.expect(/<\/stream:features>/);
    raw.send("<message to='romeo@montague.lit'><body>hi</body></message>");
    await raw.expect(/<stream:error><not-authorized/);
    await raw.waitClosed();
    t.pass('closed');
  });
});

async function waitUntil(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
