// The stream core against a real Prosody 0.12 (pubsub-only "mid" config, see test/backends/prosody/):
// an unmodified client library logs in through the proxy (STARTTLS to the proxy, STARTTLS from the
// proxy to Prosody verified with the test CA, SASL relayed, bind), talks to the backend as if
// directly, and a wrong password is the backend's own SASL failure.
import t from 'tap';
import type { Element } from 'ltx';
import { startProsody } from './harness/prosody.js';
import { startTestProxy } from './harness/proxy.js';
import { badRestartHeaders, featuresAfterStartTls, loginPingDisco, messagePassesUnchanged, wrongPasswordFails } from './harness/scenarios.js';
import { connect, xml, RawClient, HEADER } from './harness/xmpp.js';
import { startCapture } from './harness/capture.js';

// @xmpp/connection 0.14 can miss the proxy's stream header after STARTTLS (TimeoutError 2 s later):
// a client-library race, explained in clients/xmpp-open-race.ts

const USERS: Array<[string, string, string]> = [
  ['juliet', 'capulet.lit', 'secret'],
  ['nurse', 'capulet.lit', 'secret'],
  ['romeo', 'montague.lit', 's3cret'],
];

t.test('stream core on prosody', async (t) => {
  const started = Date.now();
  const backend = await startProsody({ users: USERS });
  t.comment(`prosody started and ${USERS.length} users registered in ${Date.now() - started} ms`);
  t.teardown(() => backend.stop());
  const p = await startTestProxy(backend);
  t.teardown(() => p.stop());

  t.test('prosody itself offers STARTTLS with the test certificate', async (t) => {
    const after = await featuresAfterStartTls(t, backend.port); // verifies the certificate for capulet.lit
    t.match(after, /<mechanism>SCRAM-SHA-1<\/mechanism>/);
    t.match(after, /<mechanism>PLAIN<\/mechanism>/);
  });

  for (const mechanism of ['SCRAM-SHA-1', 'PLAIN']) {
    t.test(`${mechanism} over STARTTLS to the proxy, bind, ping and disco#info`, async (t) => {
      const query = await loginPingDisco(t, p.port, mechanism);
      const features = query.getChildren('feature').map((f: Element) => f.attrs.var as string);
      t.notOk(features.includes('jabber:iq:roster'), 'mod_roster is disabled on this backend');
      t.equal(query.getChild('identity')?.attrs.category, 'server');
    });
  }

  t.test('the backend is the pubsub-only config: PEP on accounts, pubsub.capulet.lit, no mod_roster', async (t) => {
    const c = await connect({ port: p.port, domain: 'capulet.lit', username: 'nurse', password: 'secret', resource: 'pep' });
    t.teardown(() => c.stop());
    const discoInfo = async (to: string) => {
      const res = await c.iqCaller.request(xml('iq', { type: 'get', to }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
      const q = res.getChild('query')!;
      return {
        features: q.getChildren('feature').map((f: { attrs: { var: string } }) => f.attrs.var),
        identities: q.getChildren('identity').map((i: { attrs: { category: string; type: string } }) => `${i.attrs.category}/${i.attrs.type}`),
      };
    };
    const own = await discoInfo('nurse@capulet.lit');
    t.ok(own.identities.includes('pubsub/pep'), 'PEP service on the account');
    const svc = await discoInfo('pubsub.capulet.lit');
    t.ok(svc.identities.includes('pubsub/service'), 'pubsub component');
    t.ok(svc.features.includes('http://jabber.org/protocol/pubsub'), 'pubsub features');
    const pub = await c.iqCaller.request(
      xml('iq', { type: 'set' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('publish', { node: 'urn:example:test' }, xml('item', { id: 'current' }, xml('x', { xmlns: 'urn:example:test' }, 'hello'))))),
    );
    t.equal(pub.attrs.type, 'result', 'PEP publish through the proxy');
    // straight to prosody (the proxy's own rules answer roster requests): mod_roster is not loaded
    const direct = await RawClient.login(backend.port, 'capulet.lit', 'nurse', 'secret', 'direct');
    t.teardown(() => direct.close());
    direct.send(`<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`);
    const answer = await direct.expect(/<iq [^>]*id=["']r1["'][^>]*>.*?<\/iq>/s);
    t.match(answer[0], /type=["']error["']/, 'roster get at prosody itself: error');
    t.match(answer[0], /<service-unavailable /, 'service-unavailable');
  });

  t.test('the proxy relays exactly SCRAM-SHA-1 and PLAIN from prosody, no *-PLUS, no stream management', async (t) => {
    const raw = await RawClient.connect(p.port);
    t.teardown(() => raw.close());
    raw.send(HEADER('capulet.lit'));
    await raw.expect(/<\/stream:features>/);
    t.match(raw.data, /<starttls xmlns=["']urn:ietf:params:xml:ns:xmpp-tls["']/, 'STARTTLS offered by the proxy');
    await raw.startTls('capulet.lit');
    raw.send(HEADER('capulet.lit'));
    const f = await raw.expect(/<stream:features>.*<\/stream:features>/s);
    const mechs = [...f[0].matchAll(/<mechanism>([^<]+)<\/mechanism>/g)].map((m) => m[1]);
    t.same(mechs.sort(), ['PLAIN', 'SCRAM-SHA-1'], 'mechanisms');
    t.notMatch(f[0], /-PLUS/, 'no channel-binding mechanism');
    t.notMatch(f[0], /urn:xmpp:sm:/, 'no stream management');
    // log in by hand to see the post-auth features too
    const auth = Buffer.from('\0juliet\0secret').toString('base64');
    raw.data = '';
    raw.send(`<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>${auth}</auth>`);
    await raw.expect(/<success[^>]*(\/>|<\/success>)/);
    raw.data = '';
    raw.send(HEADER('capulet.lit'));
    const post = await raw.expect(/<stream:features>.*<\/stream:features>/s);
    t.match(post[0], /<bind xmlns=["']urn:ietf:params:xml:ns:xmpp-bind["']/, 'bind offered');
    t.notMatch(post[0], /urn:xmpp:sm:/, 'prosody offers sm2/sm3 but the proxy does not relay them');
    t.notMatch(post[0], /rosterver/, 'no roster versioning');
  });

  t.test('a message between two bound users passes unchanged', (t) => messagePassesUnchanged(t, p.port));

  t.test('wrong password is a SASL failure at the client', (t) => wrongPasswordFails(t, p.port));

  t.test('a bad header at a restart (after SASL, after STARTTLS): our header, the error, the close', (t) => badRestartHeaders(t, p.port));

  t.test('plaintext backend leg (--upstream-tls off) through a recording relay', async (t) => {
    const cap = await startCapture(backend.host, backend.port);
    t.teardown(() => cap.stop());
    const px = await startTestProxy({ host: '127.0.0.1', port: cap.port }, { upstreamTls: 'off' });
    t.teardown(() => px.stop());
    const c = await connect({ port: px.port, domain: 'capulet.lit', username: 'nurse', password: 'secret', resource: 'chamber', mechanism: 'SCRAM-SHA-1' });
    t.teardown(() => c.stop());
    t.equal(c.jid.toString(), 'nurse@capulet.lit/chamber');
    t.ok(c.isSecure(), 'client leg still TLS');
    t.notMatch(cap.toBackend(), /<starttls/, 'no STARTTLS towards prosody');
    t.match(cap.toBackend(), /<auth xmlns=["']urn:ietf:params:xml:ns:xmpp-sasl["'] mechanism=["']SCRAM-SHA-1["']>/, 'SASL relayed in the clear to prosody');
    const info = await c.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
    t.equal(info.attrs.type, 'result');
    t.match(cap.fromBackend(), new RegExp(`<iq [^>]*id=["']${info.attrs.id}["']`), 'the answer came from prosody, in the clear');
    const pong = await c.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    t.equal(pong.attrs.type, 'result', 'ping answered (the proxy answers after its own ping to prosody)');
    t.match(cap.toBackend(), /<ping xmlns=["']urn:xmpp:ping["']\/>/, "the proxy's own ping went to prosody");
  });

  t.test('prosody on TLS 1.2 offers SCRAM-SHA-1-PLUS to the proxy; the proxy hides it and @xmpp/client (gs2 "n") logs in', async (t) => {
    const b12 = await startProsody({ users: [['juliet', 'capulet.lit', 'secret']], tlsProtocol: 'tlsv1_2' });
    t.teardown(() => b12.stop());
    const direct = await RawClient.connect(b12.port);
    t.teardown(() => direct.close());
    direct.send(HEADER('capulet.lit'));
    await direct.expect(/<\/stream:features>/);
    await direct.startTls('capulet.lit');
    t.equal((direct.socket as import('node:tls').TLSSocket).getProtocol(), 'TLSv1.2');
    direct.send(HEADER('capulet.lit'));
    const f = await direct.expect(/<stream:features>.*<\/stream:features>/s);
    t.match(f[0], /<mechanism>SCRAM-SHA-1-PLUS<\/mechanism>/, 'prosody offers channel binding on TLS 1.2');
    const px = await startTestProxy(b12);
    t.teardown(() => px.stop());
    const raw = await RawClient.connect(px.port);
    t.teardown(() => raw.close());
    raw.send(HEADER('capulet.lit'));
    await raw.expect(/<\/stream:features>/);
    await raw.startTls('capulet.lit');
    raw.send(HEADER('capulet.lit'));
    const pf = await raw.expect(/<stream:features>.*<\/stream:features>/s);
    t.notMatch(pf[0], /-PLUS/, 'the proxy does not relay SCRAM-SHA-1-PLUS');
    const c = await connect({ port: px.port, domain: 'capulet.lit', username: 'juliet', password: 'secret', mechanism: 'SCRAM-SHA-1' });
    t.teardown(() => c.stop());
    t.equal(c.jid.bare().toString(), 'juliet@capulet.lit');
  });
});
