// Issue 9 points 2 and 3 against real ejabberd and Prosody: direct TLS for clients (XEP-0368,
// --listen-tls) and the PROXY protocol v1/v2 (--proxy-protocol) on both TCP listeners: the client's
// address from the header in the logs, a connection without a header refused.
import t from 'tap';
import { recordingLogger } from './harness/admin.js';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { startTestProxy } from './harness/proxy.js';
import { HEADER, RawClient } from './harness/xmpp.js';
import { proxyV1, proxyV2, v2 } from './harness/proxy-header.js';
import type { Test } from 'tap';

const USERS: Array<[string, string, string]> = [
  ['juliet', 'capulet.lit', 'secret'],
  ['romeo', 'capulet.lit', 'secret'],
];
const LOCAL = { host: '127.0.0.1', port: 0 };

const { log, raw: lines } = recordingLogger('info');
const logged = (msg: string, since: number) => lines.slice(since).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

async function until(pred: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** ping the server on a bound raw session */
async function ping(t: Test, c: RawClient): Promise<void> {
  c.data = '';
  c.send(`<iq type='get' id='ping1' to='capulet.lit'><ping xmlns='urn:xmpp:ping'/></iq>`);
  await c.expect(/<iq [^>]*id=["']ping1["'][^>]*type=["']result["']|<iq [^>]*type=["']result["'][^>]*id=["']ping1["']/);
  t.pass('ping answered');
}

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`direct TLS and the PROXY protocol on ${kind}`, async (t) => {
    const backend = kind === 'ejabberd' ? await startEjabberd({ users: USERS }) : await startProsody({ users: USERS });
    t.teardown(() => backend.stop());

    t.test('direct TLS (XEP-0368): TLS from the first byte, ALPN xmpp-client, no STARTTLS offered', async (t) => {
      const p = await startTestProxy(backend, { listenTls: LOCAL }, undefined, log);
      t.teardown(() => p.stop());
      const port = p.proxy.addresses!.tls!.port;
      const look = await RawClient.connectWith(port, { directTls: true });
      t.teardown(() => look.close());
      look.send(HEADER('capulet.lit'));
      await look.expect(/<\/stream:features>/);
      t.notMatch(look.data, /starttls/, 'no STARTTLS inside TLS');
      t.match(look.data, /<mechanism>PLAIN<\/mechanism>/, 'SASL offered at once');
      const c = await RawClient.connectWith(port, { directTls: true, alpn: ['xmpp-client'] });
      t.teardown(() => c.close());
      t.equal((c.socket as import('node:tls').TLSSocket).alpnProtocol, 'xmpp-client', 'ALPN answered');
      await RawClient.login(c, 'capulet.lit', 'juliet', 'secret', 'direct', false);
      await ping(t, c);
      // without ALPN too, and the STARTTLS listener is unchanged beside it
      const noAlpn = await RawClient.connectWith(port, { directTls: true });
      t.teardown(() => noAlpn.close());
      await RawClient.login(noAlpn, 'capulet.lit', 'romeo', 'secret', 'direct2', false);
      t.pass('a client without ALPN logs in');
      const starttls = await RawClient.login(p.port, 'capulet.lit', 'romeo', 'secret', 'starttls');
      t.teardown(() => starttls.close());
      t.pass('STARTTLS on --listen still works');
    });

    t.test('PROXY protocol: v1 and v2, on --listen and on --listen-tls', async (t) => {
      const p = await startTestProxy(backend, { listenTls: LOCAL, proxyProtocol: true }, undefined, log);
      t.teardown(() => p.stop());
      const cases: Array<[string, number, Buffer, boolean, string]> = [
        ['v1 on --listen', p.port, proxyV1('203.0.113.7', 40001), false, '203.0.113.7:40001'],
        ['v2 on --listen', p.port, proxyV2('203.0.113.8', 40002), false, '203.0.113.8:40002'],
        ['v1 on --listen-tls', p.proxy.addresses!.tls!.port, proxyV1('198.51.100.9', 40003), true, '198.51.100.9:40003'],
        ['v2 on --listen-tls', p.proxy.addresses!.tls!.port, proxyV2('198.51.100.10', 40004), true, '198.51.100.10:40004'],
      ];
      for (const [what, port, header, directTls, remote] of cases) {
        const since = lines.length;
        // the header and the stream header in one write on the plain listener: what follows the
        // PROXY header in the same segment must not be lost
        const c = directTls
          ? await RawClient.connectWith(port, { preface: header, directTls: true })
          : await RawClient.connectWith(port, { preface: Buffer.concat([header, Buffer.from(HEADER('capulet.lit'))]) });
        t.teardown(() => c.close());
        if (!directTls) {
          await c.expect(/<\/stream:features>/);
          await c.startTls('capulet.lit');
        }
        await RawClient.login(c, 'capulet.lit', 'juliet', 'secret', `pp${since}`, false);
        await ping(t, c);
        await until(() => logged('client connected', since).length > 0, 'the connect log');
        const line = logged('client connected', since)[0]!;
        t.equal(line.remote, remote, `${what}: the client's address in the log`);
        t.match(line.via, /^127\.0\.0\.1:[0-9]+$/, `${what}: the balancer's address beside it`);
        const bound = logged('bound', since)[0];
        t.equal(bound?.sid, line.sid, 'the same session bound');
      }
    });

    t.test('PROXY protocol: LOCAL (a health check) uses the connection\'s own address', async (t) => {
      const p = await startTestProxy(backend, { proxyProtocol: true }, undefined, log);
      t.teardown(() => p.stop());
      const since = lines.length;
      const c = await RawClient.connectWith(p.port, { preface: v2(0, 0, Buffer.alloc(0)) });
      t.teardown(() => c.close());
      c.send(HEADER('capulet.lit'));
      await c.expect(/<\/stream:features>/);
      await until(() => logged('client connected', since).length > 0, 'the connect log');
      const line = logged('client connected', since)[0]!;
      t.match(line.remote, /^127\.0\.0\.1:[0-9]+$/);
      t.equal(line.via, undefined);
    });

    t.test('PROXY protocol on: a connection without the header is refused unanswered', async (t) => {
      const p = await startTestProxy(backend, { listenTls: LOCAL, proxyProtocol: true, headerTimeout: 1000 }, undefined, log);
      t.teardown(() => p.stop());
      for (const [what, bytes] of [
        ['a stream header', Buffer.from(HEADER('capulet.lit'))],
        ['a TLS ClientHello-like start', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05])],
        ['a bad v1 line', Buffer.from('PROXY TCP4 nonsense\r\n')],
      ] as const) {
        const since = lines.length;
        const c = await RawClient.connectWith(p.port, { preface: bytes });
        await c.waitClosed();
        t.equal(c.data, '', `${what}: nothing answered`);
        t.ok(logged('connection refused: no valid PROXY protocol header', since).length > 0, `${what}: logged`);
      }
      const since = lines.length;
      const silent = await RawClient.connectWith(p.proxy.addresses!.tls!.port, {});
      await silent.waitClosed(4000);
      t.match(logged('connection refused: no valid PROXY protocol header', since)[0]?.reason, /within 1000 ms/, 'silence: refused after --header-timeout');
    });

    t.test('PROXY protocol off (the default): a PROXY header is not XML', async (t) => {
      const p = await startTestProxy(backend, {}, undefined, log);
      t.teardown(() => p.stop());
      const c = await RawClient.connectWith(p.port, { preface: proxyV1('203.0.113.7', 40001) });
      await c.expect(/<stream:error>/);
      await c.waitClosed();
      t.pass('stream error, closed');
    });
  });
}
