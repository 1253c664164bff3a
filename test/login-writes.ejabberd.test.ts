// What a login costs in writes, against a real ejabberd: the proxy's stream header goes out with its
// features (one write, as a server's own), and what initial presence starts (the catch-up of offline
// messages, the probes) goes to the backend in the presence publish's write instead of one round
// trip after its answer; at the close, the item's retraction goes with the unavailable publish. Both legs are recorded (a capture between the client and the proxy, one
// between the proxy and ejabberd): each chunk a capture passes on is one read of what one write sent.
import net from 'node:net';
import t from 'tap';
import { startEjabberd } from './harness/ejabberd.js';
import { startTestProxy } from './harness/proxy.js';
import { startCapture } from './harness/capture.js';
import { HEADER, RawClient } from './harness/xmpp.js';

t.test('login writes on ejabberd', async (t) => {
  const backend = await startEjabberd({ users: [['juliet', 'capulet.lit', 'secret']] });
  t.teardown(() => backend.stop());
  const up = await startCapture(backend.host, backend.plainPort!);
  const p = await startTestProxy({ host: '127.0.0.1', port: up.port }, { upstreamTls: 'off' });
  const down = await startCapture('127.0.0.1', p.port);
  t.teardown(async () => {
    await down.stop();
    await p.stop();
    await up.stop();
  });

  /** a login through both captures, initial presence sent and its echo back; then closed */
  async function login(resource: string): Promise<void> {
    const c = await RawClient.login(down.port, 'capulet.lit', 'juliet', 'secret', resource);
    c.send('<presence/>');
    await c.expect(new RegExp(`<presence[^>]*from=["']juliet@capulet\\.lit/${resource}["']`));
    await new Promise((r) => setTimeout(r, 300)); // what initial presence started has gone out
    c.send('</stream:stream>');
    await c.expect(/<\/stream:stream>/);
    c.close();
    await new Promise((r) => setTimeout(r, 300));
  }

  /** a login's chunks to the backend (its close included), and the one with its presence publish */
  async function loginSent(resource: string) {
    const before = up.timeline().length;
    await login(resource);
    const sent = up.timeline().slice(before).filter((e) => e.toBackend);
    return { sent, publish: sent.find((e) => e.text.includes(`<publish node="presence"><item id="${resource}">`)) };
  }

  t.test("the proxy's stream header and its features: one write", async (t) => {
    const c = await RawClient.connect(down.port);
    c.send(HEADER('capulet.lit'));
    await c.expect(/<\/stream:features>/);
    const fromProxy = down.timeline().filter((e) => !e.toBackend);
    t.ok(fromProxy.length > 0, 'the proxy answered');
    t.match(fromProxy[0]!.text, /^<\?xml[^>]*\?><stream:stream [^>]*>/, 'the first chunk starts with the header');
    t.match(fromProxy[0]!.text, /<stream:features>.*<\/stream:features>$/s, 'and holds the features');
    c.close();
  });

  t.test('a backend slow to answer: the header goes out alone after a short wait', async (t) => {
    // a backend that accepts and never says a word: the client still gets the proxy's header soon
    const silent = net.createServer((sock) => sock.on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    const slow = await startTestProxy({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port }, { upstreamTls: 'off' });
    t.teardown(async () => {
      await slow.stop();
      silent.close();
    });
    const c = await RawClient.connect(slow.port);
    const t0 = Date.now();
    c.send(HEADER('capulet.lit'));
    await c.expect(/<stream:stream [^>]*>/, 2000);
    t.ok(Date.now() - t0 < 1500, `the header came in ${Date.now() - t0} ms, within a client's own header timeout`);
    t.notMatch(c.data, /<stream:features>/, 'without features: the backend has sent none');
    c.close();
  });

  /** the login's reads of the user's own nodes, per node name, in the chunks they went in */
  const reads = (sent: Array<{ text: string }>) =>
    sent.map((e) => [...e.text.matchAll(/<items node="(presence|xep207-proxy\/(?:roster|inbox|pep))"\/>/g)].map((m) => m[1])).filter((r) => r.length > 0);

  t.test('first login: the presence publish and the waiting node read in one write', async (t) => {
    const { sent, publish } = await loginSent('first');
    t.ok(publish, 'the presence was published');
    // the presence node is read alone: missing, it is the user's first login through the proxy, and
    // the user's other nodes (made by its own sessions after that one) are not asked for
    t.same(reads(sent), [['presence']], 'the presence node read alone, no read of the roster, inbox or PEP registry');
    t.ok(sent.some((e) => /<create node="presence"\/>/.test(e.text)), 'and the presence node made');
    t.match(publish?.text ?? '', /<items node="xep207-proxy\/waiting\//, "the read of the user's waiting node goes with it");
  });

  t.test("second login: the presence publish and the catch-up's read in one write", async (t) => {
    const { sent, publish } = await loginSent('second');
    t.ok(publish, 'the presence was published');
    // an account this proxy has seen with its presence node: its four reads in one write
    t.same(reads(sent).map((r) => [...r].sort()), [['presence', 'xep207-proxy/inbox', 'xep207-proxy/pep', 'xep207-proxy/roster']], 'the four reads of the login in one write');
    // nobody has contacted juliet: no inbox yet (ejabberd's lazy inbox), so the catch-up reads her
    // waiting node, and no delivery markers (an empty waiting node says there are none)
    t.match(publish?.text ?? '', /<items node="xep207-proxy\/waiting\//, "the read of the user's waiting node goes with it");
    t.notOk(sent.some((e) => /xep207-proxy\/waiting\//.test(e.text) && e !== publish), 'and is not sent again');
    t.notOk(sent.some((e) => /xep207-proxy\/delivered/.test(e.text)), 'no read of the delivery markers');
    // the close: the unavailable presence's publish and the item's retraction
    const gone = sent.find((e) => /<publish node="presence"><item id="second"><presence[^>]*type="unavailable"/.test(e.text));
    t.ok(gone, 'the close published the unavailable presence');
    t.match(gone?.text ?? '', /<retract node="presence"[^>]*><item id="second"\/>/, 'and its retraction goes with it');
  });
});
