// Issue 2 against a real ejabberd: an unmodified client library logs in through the proxy (STARTTLS
// to the proxy, SASL relayed, bind), talks to the backend as if directly, and bad input is stopped at
// the proxy without touching anybody else's session.
import t from 'tap';
import net from 'node:net';
import { startEjabberd } from './harness/ejabberd.js';
import { startTestProxy } from './harness/proxy.js';
import { badRestartHeaders, featuresAfterStartTls, loginPingDisco, messagePassesUnchanged, wrongPasswordFails } from './harness/scenarios.js';
import { connect, waitFor, xml, RawClient, HEADER } from './harness/xmpp.js';
import { startCapture } from './harness/capture.js';

const USERS: Array<[string, string, string]> = [
  ['juliet', 'capulet.lit', 'secret'],
  ['nurse', 'capulet.lit', 'secret'],
  ['romeo', 'montague.lit', 's3cret'],
];

t.test('stream core on ejabberd', async (t) => {
  const backend = await startEjabberd({ users: USERS });
  t.teardown(() => backend.stop());
  const p = await startTestProxy(backend);
  t.teardown(() => p.stop());

  for (const mechanism of ['SCRAM-SHA-1', 'PLAIN']) {
    t.test(`${mechanism} over STARTTLS to the proxy, bind, ping and disco#info`, async (t) => {
      await loginPingDisco(t, p.port, mechanism);
    });
  }

  t.test('the proxy offers no *-PLUS mechanism, no stream management, no roster versioning', async (t) => {
    const after = await featuresAfterStartTls(t, p.port);
    t.match(after, /<mechanism>SCRAM-SHA-1<\/mechanism>/);
    t.notMatch(after, /-PLUS/, 'no channel-binding mechanism');
    t.notMatch(after, /starttls/, 'no STARTTLS once on TLS');
    t.match(after, /<stream:stream [^>]*version=["']1\.0["']/, 'version 1.0');
    t.match(after, /<stream:stream [^>]*xml:lang=/, 'xml:lang');
    t.match(after, /<stream:stream [^>]*id=["'][^"']{8,}["']/, 'own stream id');
  });

  t.test('a message between two bound users passes unchanged', (t) => messagePassesUnchanged(t, p.port));

  t.test('wrong password is a SASL failure at the client', (t) => wrongPasswordFails(t, p.port));

  t.test('bad XML gets its stream error while another session keeps working', async (t) => {
    const nurse = await connect({ port: p.port, domain: 'capulet.lit', username: 'nurse', password: 'secret', resource: 'chamber' });
    t.teardown(() => nurse.stop());
    const cases: Array<[string, string]> = [
      ['<message><body>&lol;</body></message>', 'restricted-xml'],
      ['<!-- a comment -->', 'restricted-xml'],
      ['<?pi data?>', 'restricted-xml'],
      ["<message to='a'></presence>", 'not-well-formed'],
      ['<message><body>' + 'x'.repeat(300_000) + '</body></message>', 'policy-violation'],
    ];
    for (const [bad, condition] of cases) {
      const raw = await RawClient.login(p.port, 'capulet.lit', 'juliet', 'secret', 'bad');
      raw.send(bad);
      await raw.expect(new RegExp(`<stream:error><${condition} xmlns=["']urn:ietf:params:xml:ns:xmpp-streams["']`));
      await raw.expect(/<\/stream:stream>/);
      await raw.waitClosed();
      t.pass(`${condition} for ${bad.slice(0, 30)}`);
    }
    const pong = await nurse.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    t.equal(pong.attrs.type, 'result', 'the other session still works');
  });

  t.test('a bad header at a restart (after SASL, after STARTTLS): our header, the error, the close', (t) => badRestartHeaders(t, p.port));

  t.test('a DOCTYPE before the stream header: restricted-xml, header first', async (t) => {
    const raw = await RawClient.connect(p.port);
    raw.send('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]>');
    await raw.expect(/<stream:stream [^>]*>.*<stream:error><restricted-xml/s);
    await raw.waitClosed();
    t.pass('closed');
  });

  t.test('plaintext mode (no certificate) still logs in', async (t) => {
    const plain = await startTestProxy(backend, { tlsCert: undefined, tlsKey: undefined });
    t.teardown(() => plain.stop());
    const raw = await RawClient.connect(plain.port);
    t.teardown(() => raw.close());
    raw.send(HEADER('capulet.lit'));
    await raw.expect(/<\/stream:features>/);
    t.notMatch(raw.data, /starttls/, 'no STARTTLS without a certificate');
    const c = await connect({ port: plain.port, domain: 'capulet.lit', username: 'nurse', password: 'secret', mechanism: 'SCRAM-SHA-1' });
    t.teardown(() => c.stop());
    t.equal(c.jid.bare().toString(), 'nurse@capulet.lit');
    t.notOk(c.isSecure(), 'plaintext client leg');
  });

  t.test('a stanza nested thousands of levels deep is stopped and never reaches the backend', async (t) => {
    // plaintext backend leg through a recording relay, so the test can read what the backend got
    const cap = await startCapture(backend.host, backend.plainPort!);
    t.teardown(() => cap.stop());
    const px = await startTestProxy({ host: '127.0.0.1', port: cap.port }, { upstreamTls: 'off' });
    t.teardown(() => px.stop());
    const nurse = await connect({ port: px.port, domain: 'capulet.lit', username: 'nurse', password: 'secret', resource: 'n1' });
    t.teardown(() => nurse.stop());
    const raw = await RawClient.login(px.port, 'capulet.lit', 'juliet', 'secret', 'deep');
    const depth = 5000;
    raw.send(`<message to='nurse@capulet.lit/n1' id='deep'>` + '<a>'.repeat(depth) + '</a>'.repeat(depth) + '</message>');
    await raw.expect(/<stream:error><policy-violation/);
    await raw.waitClosed();
    t.notMatch(cap.toBackend(), /<a><a><a>/, 'no part of it was forwarded');
    const pong = await nurse.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    t.equal(pong.attrs.type, 'result', 'backend and other sessions unaffected');
    // a normal stanza that no rule maps still goes through the same recording path, byte for byte
    const raw2 = await RawClient.login(px.port, 'capulet.lit', 'juliet', 'secret', 'shallow');
    t.teardown(() => raw2.close());
    raw2.send(`<iq type='get' to='nurse@capulet.lit/n1' id='shallow'><query xmlns='urn:example:ok' a='b'>ok</query></iq>`);
    const got = await waitFor(nurse, (s) => s.attrs.id === 'shallow');
    t.equal(got.getChildText('query', 'urn:example:ok'), 'ok');
    t.match(cap.toBackend(), /<iq type='get' to='nurse@capulet.lit\/n1' id='shallow'><query xmlns='urn:example:ok' a='b'>ok<\/query><\/iq>/, 'forwarded as the client wrote it');
  });

  t.test('backend down: remote-connection-failed', async (t) => {
    const dead = await new Promise<number>((resolve) => {
      const s = net.createServer();
      s.listen(0, '127.0.0.1', () => {
        const port = (s.address() as net.AddressInfo).port;
        s.close(() => resolve(port));
      });
    });
    const px = await startTestProxy({ host: '127.0.0.1', port: dead });
    t.teardown(() => px.stop());
    const raw = await RawClient.connect(px.port);
    raw.send(HEADER('capulet.lit'));
    await raw.expect(/<stream:stream [^>]*>.*<stream:error><remote-connection-failed/s);
    await raw.waitClosed();
    await t.rejects(connect({ port: px.port, domain: 'capulet.lit', username: 'juliet', password: 'secret' }), 'a library client fails cleanly too');
  });
});
