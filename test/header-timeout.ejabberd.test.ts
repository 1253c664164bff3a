// Issue 6 #8: half-open connections (a peer that stops inside its stream header, or inside an element
// before binding) are cut off after --header-timeout, long before --negotiation-timeout, each with a
// well-formed stream header + <connection-timeout/>; and every one of them is released, also a peer
// that never reads and never closes its side.
import t from 'tap';
import net from 'node:net';
import { startEjabberd } from './harness/ejabberd.js';
import { startTestProxy } from './harness/proxy.js';
import { isErrorStream } from './harness/scenarios.js';
import { RawClient, HEADER } from './harness/xmpp.js';

const H = HEADER('capulet.lit');
const HEADER_TIMEOUT = 1000;

/** One way to stall: set the connection up, stop; resolves with the client and what its answer holds. */
type Stall = (port: number, i: number) => Promise<{ c: RawClient; children: string[] }>;

const STALLS: Array<[string, number, Stall]> = [
  ['sends nothing', 10, async (port) => ({ c: await RawClient.connect(port), children: ['stream:error'] })],
  ['half a header', 10, async (port, i) => {
    const c = await RawClient.connect(port);
    c.send(H.slice(0, 5 + ((i * 13) % (H.length - 6)))); // cut at a different byte each time
    return { c, children: ['stream:error'] };
  }],
  ['a header, then half an <auth', 10, async (port) => {
    const c = await RawClient.connect(port);
    c.send(H);
    await c.expect(/<\/stream:features>/);
    c.send("<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PL");
    return { c, children: ['stream:features', 'stream:error'] };
  }],
  ['after SASL success, no restart header', 10, async (port) => ({
    c: await RawClient.authenticated(port, 'capulet.lit', 'juliet', 'secret'),
    children: ['stream:error'],
  })],
  ['after STARTTLS, half a header', 5, async (port) => {
    const c = await RawClient.connect(port);
    c.send(H);
    await c.expect(/<\/stream:features>/);
    await c.startTls('capulet.lit');
    c.send(H.slice(0, 60));
    return { c, children: ['stream:error'] };
  }],
];

t.test('half-open connections on ejabberd', async (t) => {
  const backend = await startEjabberd({ users: [['juliet', 'capulet.lit', 'secret']] });
  t.teardown(() => backend.stop());
  const p = await startTestProxy(backend, { headerTimeout: HEADER_TIMEOUT, negotiationTimeout: 300_000 });
  t.teardown(() => p.stop());

  // 5 peers that never read and never close: only the proxy can end those connections
  const deaf = await Promise.all(
    Array.from({ length: 5 }, () => new Promise<net.Socket>((resolve) => {
      const s = net.connect({ host: '127.0.0.1', port: p.port, allowHalfOpen: true }, () => {
        s.write(H.slice(0, 40));
        s.pause();
        resolve(s);
      });
      s.on('error', () => undefined);
    })),
  );
  t.teardown(() => deaf.forEach((s) => s.destroy()));
  const started = Date.now();

  const runs = STALLS.flatMap(([what, n, stall]) => Array.from({ length: n }, async (_, i) => {
    const { c, children } = await stall(p.port, i);
    t.teardown(() => c.close());
    const stalled = Date.now();
    await c.waitClosed(HEADER_TIMEOUT + 4000);
    const after = Date.now() - stalled;
    return { what, i, after, data: c.data, children };
  }));
  const results = await Promise.all(runs);
  t.equal(results.length + deaf.length, 50, '50 half-open connections');
  for (const r of results) {
    const label = `${r.what} #${r.i}`;
    // after a restart the clock starts with our <proceed/> or <success/>, a little before the client stalls
    t.ok(r.after >= HEADER_TIMEOUT / 2 && r.after < HEADER_TIMEOUT + 3000, `${label}: closed ${r.after} ms after it stalled`);
    isErrorStream(t, r.data, r.children, 'connection-timeout', label);
  }
  // the deaf peers hold nothing at the proxy either: the close after the stream error destroys the
  // socket after its grace period (2 s), though the peer never closes its side
  const limit = HEADER_TIMEOUT + 2000 + 1500;
  while (p.proxy.sessions.size > 0 && Date.now() - started < limit) await new Promise((r) => setTimeout(r, 100));
  t.equal(p.proxy.sessions.size, 0, `every session gone ${Date.now() - started} ms after the deaf peers stalled`);
});
