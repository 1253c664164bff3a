// A namespace prefix declared on the client's stream header (XML allows it; clients do not) is not a
// way past the rules: the tokenizer leaves such a stanza's child without a namespace, and the
// backend, whose stream from the proxy declares no such prefix, refuses the stanza as not
// well-formed. Here a prefixed owner delete of the presence node: the stream ends, the node stays.
import t from 'tap';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { SERVICE_CONFIG, SERVICE_USER, startTestProxy } from './harness/proxy.js';
import { HEADER, RawClient } from './harness/xmpp.js';

const JULIET: [string, string, string] = ['juliet', 'capulet.lit', 'secret'];

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`a prefix declared on the stream header, on ${kind}`, async (t) => {
    const backend = kind === 'ejabberd' ? await startEjabberd({ users: [JULIET] }) : await startProsody({ users: [JULIET, SERVICE_USER] });
    t.teardown(() => backend.stop());
    const p = await startTestProxy({ host: '127.0.0.1', port: backend.port }, { upstreamTls: 'off', ...(kind === 'prosody' ? SERVICE_CONFIG : {}) });
    t.teardown(() => p.stop());
    await RawClient.login(p.port, 'capulet.lit', 'juliet', 'secret', 'first', false).then((c) => c.close()); // makes the presence node
    const c = await RawClient.authenticated(p.port, 'capulet.lit', 'juliet', 'secret', false);
    c.send(HEADER('capulet.lit').replace(" version='1.0'>", " xmlns:o='http://jabber.org/protocol/pubsub#owner' version='1.0'>"));
    await c.expect(/<\/stream:features>/);
    c.send(`<iq type='set' id='bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>r</resource></bind></iq>`);
    await c.expect(/<jid>[^<]+<\/jid>/);
    c.data = '';
    c.send(`<iq type='set' id='h1'><o:pubsub><o:delete node='presence'/></o:pubsub></iq>`);
    await c.expect(/<stream:error><not-well-formed/);
    t.pass('the backend refused it as not well-formed: the stream ended');
    c.close();
    const again = await RawClient.login(p.port, 'capulet.lit', 'juliet', 'secret', 'again', false);
    again.send(`<iq type='get' id='cfg'><pubsub xmlns='http://jabber.org/protocol/pubsub#owner'><configure node='presence'/></pubsub></iq>`);
    const answer = await again.expect(/<iq[^>]*id=['"]cfg['"][^>]*>/);
    t.match(answer[0], /type=['"]result['"]/, 'the presence node is still there');
    again.close();
  });
}
