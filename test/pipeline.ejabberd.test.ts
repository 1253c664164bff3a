// The rule pipeline against a real ejabberd, with the real ping rule and test-only rules installed in
// front of it: claims, emitting to either side, the proxy's own iqs (ids, answers, time-outs), order.
import t from 'tap';
import { startEjabberd } from './harness/ejabberd.js';
import { startTestProxy } from './harness/proxy.js';
import { startCapture } from './harness/capture.js';
import { connect, waitFor, xml, RawClient } from './harness/xmpp.js';
import { defaultRules } from '../src/rules/index.js';
import type { Rule } from '../src/rules/types.js';
import { StanzaError, errorReply } from '../src/xmpp/stanza-error.js';

const NS_TEST = 'urn:xep207:test';

/** Test-only rules; each acts only on stanzas carrying its own test payload. */
const testRules: Rule[] = [
  {
    // <iq type='get'><count-features xmlns='urn:xep207:test'/></iq>: answered by the proxy after its own
    // disco#info request to the backend (request() round trip, result invisible to the client)
    name: 'count-features',
    fromClient(s, ctx) {
      if (s.name !== 'iq' || !s.childIs('count-features', NS_TEST)) return false;
      const timeout = Number(s.el.getChild('count-features')!.attrs.timeout ?? 5000);
      const target = (s.el.getChild('count-features')!.attrs.target as string | undefined) ?? ctx.domain;
      return ctx
        .request(xml_('iq', { type: 'get', to: target }, xml_('query', { xmlns: 'http://jabber.org/protocol/disco#info' })), timeout)
        .then(
          (res) => {
            const n = res.getChild('query')!.getChildren('feature').length;
            ctx.toClient(xml_('iq', { type: 'result', id: s.attrs.id!, to: ctx.jid.toString() }, xml_('count', { xmlns: NS_TEST, n: String(n) })));
            return true;
          },
          (err: StanzaError) => {
            ctx.toClient(errorReply(s.el, new StanzaError(err.condition, err.text), ctx.domain));
            return true;
          },
        );
    },
  },
  {
    // a message with <hold ms='N'/> is held N ms before being forwarded (pass-through): order test
    name: 'hold',
    fromClient(s) {
      if (s.name !== 'message') return false;
      const hold = s.el.getChild('hold', NS_TEST);
      if (!hold) return false;
      return new Promise((resolve) => setTimeout(() => resolve(false), Number(hold.attrs.ms)));
    },
  },
  {
    // a message with <both/>: claimed; the proxy sends it on to the backend AND an ack to the client
    name: 'both',
    fromClient(s, ctx) {
      if (s.name !== 'message' || !s.el.getChild('both', NS_TEST)) return false;
      const el = s.el;
      el.remove('both', NS_TEST);
      el.cnode(xml_('via-rule', { xmlns: NS_TEST }));
      ctx.toBackend(el);
      ctx.toClient(xml_('message', { to: ctx.jid.toString(), from: ctx.domain, id: `ack-${s.attrs.id}` }, xml_('ack', { xmlns: NS_TEST })));
      return true;
    },
    // messages from the backend carrying <via-rule/> get a <seen-by-rule/> added (fromBackend rewrite)
    fromBackend(s, ctx) {
      if (s.name !== 'message' || !s.el.getChild('via-rule', NS_TEST)) return false;
      const el = s.el;
      el.cnode(xml_('seen-by-rule', { xmlns: NS_TEST }));
      ctx.toClient(el);
      return true;
    },
  },
  {
    // <iq><throw/></iq>: the rule throws; the client must get internal-server-error, not silence
    name: 'throws',
    fromClient(s) {
      if (s.name === 'iq' && s.childIs('throw', NS_TEST)) throw new Error('boom');
      return false;
    },
  },
];

function xml_(name: string, attrs: Record<string, string>, ...children: ReturnType<typeof xml>[]) {
  return xml(name, attrs, ...children);
}

/** The test rules right after the account rule: before §6 claims every message to a user. */
function rulesWithTests() {
  const [account, ...others] = defaultRules();
  return [account!, ...testRules, ...others];
}

t.test('rule pipeline on ejabberd', async (t) => {
  const backend = await startEjabberd({ users: [['juliet', 'capulet.lit', 'secret'], ['romeo', 'montague.lit', 'secret']] });
  t.teardown(() => backend.stop());
  const cap = await startCapture(backend.host, backend.plainPort!);
  t.teardown(() => cap.stop());
  const p = await startTestProxy({ host: '127.0.0.1', port: cap.port }, { upstreamTls: 'off', requestTimeout: 3000 }, rulesWithTests());
  t.teardown(() => p.stop());
  const juliet = await connect({ port: p.port, domain: 'capulet.lit', username: 'juliet', password: 'secret', resource: 'balcony' });
  const romeo = await connect({ port: p.port, domain: 'montague.lit', username: 'romeo', password: 'secret', resource: 'orchard' });
  t.teardown(() => Promise.all([juliet.stop(), romeo.stop()]));
  const clientSaw = (re: RegExp) => juliet.received.some((s: { toString(): string }) => re.test(s.toString()));

  t.test("the proxy's own request: own id, answer consumed, result built from it", async (t) => {
    const res = await juliet.iqCaller.request(xml('iq', { type: 'get', id: 'cf1' }, xml('count-features', { xmlns: NS_TEST })));
    const n = Number(res.getChild('count', NS_TEST)!.attrs.n);
    t.ok(n > 3, `backend disco#info features counted (${n})`);
    const sent = cap.toBackend();
    const m = /<iq [^>]*id=['"](x207[^'"]+)['"][^>]*>\s*<query xmlns=['"]http:\/\/jabber.org\/protocol\/disco#info/.exec(sent) ??
      /<iq [^>]*type=['"]get['"][^>]*id=['"](x207[^'"]+)['"]/.exec(sent);
    t.ok(m, 'the request went to the backend with a proxy id');
    t.notOk(/id=["']cf1["'][^>]*>\s*<count-features/.test(sent), 'the claimed client iq never reached the backend');
    t.ok(cap.fromBackend().includes(m![1]!), 'the backend answered that id');
    t.notOk(clientSaw(new RegExp(m![1]!)), 'the answer never reached the client');
  });

  t.test('a request nobody answers times out into a stanza error', async (t) => {
    // an iq to a full JID whose client never answers (raw client ignoring everything)
    const silent = await RawClient.login(p.port, 'montague.lit', 'romeo', 'secret', 'silent');
    t.teardown(() => silent.close());
    const started = Date.now();
    const err = await juliet.iqCaller
      .request(xml('iq', { type: 'get', id: 'cf2' }, xml('count-features', { xmlns: NS_TEST, target: 'romeo@montague.lit/silent', timeout: '400' })))
      .then(() => undefined, (e: { condition?: string }) => e);
    t.equal(err?.condition, 'remote-server-timeout');
    t.ok(Date.now() - started < 3000, 'after the rule\'s time-out');
  });

  t.test('the ping rule answers a server ping after a backend ping; other pings pass through', async (t) => {
    const before = (cap.toBackend().match(/urn:xmpp:ping/g) ?? []).length;
    const pong = await juliet.iqCaller.request(xml('iq', { type: 'get', id: 'sp1' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    t.equal(pong.attrs.type, 'result');
    t.equal(pong.attrs.id, 'sp1');
    const sent = cap.toBackend();
    t.equal((sent.match(/urn:xmpp:ping/g) ?? []).length, before + 1, 'one ping went to the backend');
    t.notMatch(sent, /id=['"]sp1['"]/, 'and it was not the client\'s');
    const p2p = await juliet.iqCaller.request(xml('iq', { type: 'get', to: 'romeo@montague.lit/orchard', id: 'pp1' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    t.equal(p2p.attrs.from, 'romeo@montague.lit/orchard', 'a ping to a contact is answered by the contact');
    t.match(cap.toBackend(), /id=['"]pp1['"]/, 'passed through with the client\'s id');
  });

  t.test('order is preserved per direction around an asynchronous rule', async (t) => {
    for (let i = 0; i < 5; i++) {
      const payload = i === 1 ? [xml('hold', { xmlns: NS_TEST, ms: '300' })] : [];
      juliet.send(xml('message', { to: 'romeo@montague.lit/orchard', id: `o${i}` }, xml('body', {}, `n${i}`), ...payload));
    }
    await waitFor(romeo, (s) => s.attrs.id === 'o4');
    const ids = romeo.received.filter((s: { attrs: { id?: string } }) => /^o\d$/.test(s.attrs.id ?? '')).map((s: { attrs: { id: string } }) => s.attrs.id);
    t.same(ids, ['o0', 'o1', 'o2', 'o3', 'o4'], 'arrival order = sending order');
  });

  t.test('a rule claims a stanza and emits to both sides; a backend-side rule rewrites', async (t) => {
    juliet.send(xml('message', { to: 'romeo@montague.lit/orchard', id: 'b1' }, xml('body', {}, 'both'), xml('both', { xmlns: NS_TEST })));
    const ack = await waitFor(juliet, (s) => s.attrs.id === 'ack-b1');
    t.ok(ack.getChild('ack', NS_TEST), 'ack to the client');
    const got = await waitFor(romeo, (s) => s.attrs.id === 'b1');
    t.ok(got.getChild('via-rule', NS_TEST), 'rewritten copy reached the backend and the contact');
    t.notOk(got.getChild('both', NS_TEST), 'the original payload was replaced');
    t.ok(got.getChild('seen-by-rule', NS_TEST), 'the contact\'s session ran the backend-side rule');
  });

  t.test('a rule that throws gives the client internal-server-error', async (t) => {
    const err = await juliet.iqCaller
      .request(xml('iq', { type: 'get', id: 'th1' }, xml('throw', { xmlns: NS_TEST })))
      .then(() => undefined, (e: { condition?: string }) => e);
    t.equal(err?.condition, 'internal-server-error');
    const pong = await juliet.iqCaller.request(xml('iq', { type: 'get' }, xml('ping', { xmlns: 'urn:xmpp:ping' })));
    t.equal(pong.attrs.type, 'result', 'the session goes on');
  });
});
