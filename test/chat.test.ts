// XEP-0207 §6 on both backends with @xmpp/client: one-to-one messages through pubsub nodes, delivery
// as RFC 6121 §8.5 says, offline delivery once at the next initial presence, carbons (XEP-0280), two
// proxy instances; and the backend's captured stream shows that no message to a user went through its
// own routing.
import t from 'tap';
import { createHash } from 'node:crypto';
import type { Element } from 'ltx';
import { PROFILES } from '../src/backends/profile.js';
import { twoProxies } from './harness/two-proxies.js';
import { upstreamElements } from './harness/capture.js';
import { waitFor, xml } from './harness/xmpp.js';
import { sessions, type Client } from './harness/roster.js';

const PASSWORD = 'secret';
const USERS: Array<[string, string, string]> = [
  ['juliet', 'capulet.lit', PASSWORD],
  ['nurse', 'capulet.lit', PASSWORD],
  ['romeo', 'montague.lit', PASSWORD],
  ['paris', 'capulet.lit', PASSWORD], // never logs in before a message is left for him
];
const JULIET = 'juliet@capulet.lit';
const ROMEO = 'romeo@montague.lit';
const NS_CARBONS = 'urn:xmpp:carbons:2';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const bodies = (c: Client, from?: string) =>
  c.received.filter((s: Element) => s.name === 'message' && s.getChild('body') && (from === undefined || s.attrs.from === from)).map((s: Element) => s.getChildText('body'));
const isBody = (text: string) => (s: Element) => s.name === 'message' && s.getChildText('body') === text;
const isCarbon = (kind: 'sent' | 'received', text: string) => (s: Element) =>
  s.name === 'message' && s.getChild(kind, NS_CARBONS)?.getChild('forwarded', 'urn:xmpp:forward:0')?.getChild('message')?.getChildText('body') === text;

/** a subscriptions query (XEP-0060 §5.6) to a pubsub service, as the proxy sends it */
const SUBSCRIPTIONS_QUERY = /<iq [^>]*to=["']pubsub\.[^>]*>\s*<pubsub [^>]*>\s*<subscriptions\s*\/>/;

async function enableCarbons(c: Client): Promise<void> {
  await c.iqCaller.request(xml('iq', { type: 'set' }, xml('enable', { xmlns: NS_CARBONS })));
}

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`one-to-one messages via pubsub on ${kind}`, async (t) => {
    const { cap, proxy, other } = await twoProxies(t, kind, USERS);
    const { login, online } = sessions(t, PASSWORD, () => proxy);
    for (const [u, d] of USERS.slice(0, 3)) await (await login(u, d, 'first')).stop();

    t.test('online: to the bare JID and to a full JID, payload and id kept, no echo to the sender', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      const romeo = await login('romeo', 'montague.lit', 'orchard', other);
      await Promise.all([online(juliet), online(romeo)]);
      await juliet.send(xml('message', { to: ROMEO, type: 'chat', id: 'm1' }, xml('body', {}, 'Wherefore art thou? <&>'), xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' }), xml('origin-id', { xmlns: 'urn:xmpp:sid:0', id: 'o-1' })));
      const got = await waitFor(romeo, isBody('Wherefore art thou? <&>'));
      t.equal(got.attrs.from, `${JULIET}/balcony`, "from the sender's full JID");
      t.equal(got.attrs.type, 'chat');
      t.equal(got.attrs.id, 'm1', 'id kept');
      t.ok(got.getChild('active', 'http://jabber.org/protocol/chatstates'), 'chat state kept');
      t.equal(got.getChild('origin-id', 'urn:xmpp:sid:0')?.attrs.id, 'o-1', 'XEP-0359 id kept');
      t.notOk(got.getChild('delay', 'urn:xmpp:delay'), 'no delay when online');
      await romeo.send(xml('message', { to: `${JULIET}/balcony`, type: 'chat', id: 'm2' }, xml('body', {}, 'By a name I know not')));
      const back = await waitFor(juliet, isBody('By a name I know not'));
      t.equal(back.attrs.from, `${ROMEO}/orchard`);
      t.equal(back.attrs.to, `${JULIET}/balcony`);
      await sleep(500);
      t.same(bodies(juliet, `${JULIET}/balcony`), [], 'the sender never sees its own message as incoming');
      t.same(bodies(romeo), ['Wherefore art thou? <&>'], 'each message once');
      await Promise.all([juliet.stop(), romeo.stop()]);
    });

    t.test('offline: delivered at the next initial presence, in order, once, with a delay', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      for (const n of [1, 2, 3]) await juliet.send(xml('message', { to: ROMEO, type: 'chat', id: `off${n}` }, xml('body', {}, `offline ${n}`)));
      await juliet.send(xml('message', { to: ROMEO, type: 'chat' }, xml('composing', { xmlns: 'http://jabber.org/protocol/chatstates' })));
      // XEP-0249: an invitation has no body, and is kept all the same
      await juliet.send(xml('message', { to: ROMEO, id: 'inv1' }, xml('x', { xmlns: 'jabber:x:conference', jid: 'verona@conference.capulet.lit' })));
      await sleep(500);
      const romeo = await login('romeo', 'montague.lit', 'orchard', other);
      await sleep(300);
      t.same(bodies(romeo), [], 'nothing before initial presence');
      await online(romeo);
      await waitFor(romeo, isBody('offline 3'));
      await sleep(300);
      t.same(bodies(romeo), ['offline 1', 'offline 2', 'offline 3'], 'in order, each once');
      const first = romeo.received.find(isBody('offline 1'))!;
      t.equal(first.attrs.from, `${JULIET}/balcony`);
      t.equal(first.attrs.id, 'off1');
      t.ok(first.getChild('delay', 'urn:xmpp:delay')?.attrs.stamp, 'a XEP-0203 delay with the send time');
      t.notOk(romeo.received.some((s: Element) => s.name === 'message' && s.getChild('composing', 'http://jabber.org/protocol/chatstates')), 'a bare chat state is not kept for later');
      const invite = await waitFor(romeo, (s: Element) => s.name === 'message' && s.attrs.id === 'inv1');
      t.equal(invite.getChild('x', 'jabber:x:conference')?.attrs.jid, 'verona@conference.capulet.lit', 'a direct invitation is kept for later');
      const before = cap.toBackend().length;
      const second = await login('romeo', 'montague.lit', 'mobile');
      await online(second);
      await sleep(1000);
      t.same(bodies(second), [], 'a resource logging in later does not get them again');
      const sent = cap.toBackend();
      if (PROFILES[kind].lazyInbox) {
        // romeo had no inbox (made when first needed): the node was announced in his waiting node,
        // and his catch-up that read it made the inbox, so that the later login need not read it
        t.match(sent, /<publish node=["']xep207-proxy\/waiting\//, "the node announced in romeo's waiting node");
        t.match(sent, /<create node=["']xep207-proxy\/inbox["']/, 'the inbox made by the catch-up that read it');
      } else {
        t.match(sent, /<retract node=["']xep207-proxy\/inbox["'][^>]*>\s*<item id=["']chat:xep207-proxy\/chat\//, "the node's announcement in romeo's inbox is retracted once its messages were delivered");
      }
      t.notMatch(sent.slice(before), /<items node=["']xep207-proxy\/waiting\//, "a later login does not read the waiting node (the markers and the inbox name the nodes)");
      await Promise.all([juliet.stop(), romeo.stop(), second.stop()]);
    });

    t.test('a resource logging in right after a live delivery (its marker not written yet) does not get it as offline', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      const romeo = await login('romeo', 'montague.lit', 'orchard', other);
      await Promise.all([online(juliet), online(romeo)]);
      await juliet.send(xml('message', { to: ROMEO, type: 'chat', id: 'live1' }, xml('body', {}, 'live, just now')));
      await waitFor(romeo, isBody('live, just now'));
      // at once, well inside the delivery record's write delay, on the other proxy instance
      const second = await login('romeo', 'montague.lit', 'tablet');
      await online(second);
      await sleep(2000);
      t.same(bodies(second), [], 'not delivered again to the later resource');
      t.same(bodies(romeo), ['live, just now'], 'once to the resource that was online');
      await Promise.all([juliet.stop(), romeo.stop(), second.stop()]);
    });

    t.test('a recipient who never logged in through the proxy gets its messages at its first login', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      await juliet.send(xml('message', { to: 'paris@capulet.lit', type: 'chat', id: 'p1' }, xml('body', {}, 'Thursday is too soon')));
      await sleep(500);
      t.notOk(juliet.received.some((s: Element) => s.name === 'message' && s.attrs.type === 'error'), 'accepted, no error');
      const paris = await login('paris', 'capulet.lit', 'church');
      await online(paris);
      const got = await waitFor(paris, isBody('Thursday is too soon'), 8000);
      t.equal(got.attrs.from, `${JULIET}/balcony`);
      const sent = cap.toBackend();
      t.match(sent, /<publish node=["']xep207-proxy\/waiting\//, "juliet's proxy announced the node in paris's waiting node (paris had no inbox)");
      t.match(sent, /<items node=["']xep207-proxy\/waiting\//, "which paris's first login read");
      t.notMatch(sent, SUBSCRIPTIONS_QUERY, 'no subscriptions query (ejabberd scans every subscription for one)');
      await Promise.all([juliet.stop(), paris.stop()]);
    });

    t.test('carbons: sent copies for the other resources, received copies for a message to one resource', async (t) => {
      const a = await login('juliet', 'capulet.lit', 'A');
      const b = await login('juliet', 'capulet.lit', 'B', other);
      const x = await login('romeo', 'montague.lit', 'X');
      const y = await login('romeo', 'montague.lit', 'Y', other);
      await Promise.all([online(a), online(b), online(x), online(y)]);
      const info = await a.iqCaller.request(xml('iq', { type: 'get', to: 'capulet.lit' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#info' })));
      t.ok(info.getChild('query')!.getChildren('feature').some((f: Element) => f.attrs.var === NS_CARBONS), 'the server advertises carbons');
      await Promise.all([enableCarbons(a), enableCarbons(b), enableCarbons(x), enableCarbons(y)]);
      await a.send(xml('message', { to: `${ROMEO}/X`, type: 'chat' }, xml('body', {}, 'to X only')));
      await waitFor(x, isBody('to X only'));
      const sent = await waitFor(b, isCarbon('sent', 'to X only'));
      t.equal(sent.attrs.from, JULIET, "a sent carbon from the user's bare JID");
      const inner = sent.getChild('sent', NS_CARBONS)!.getChild('forwarded')!.getChild('message')!;
      t.equal(inner.attrs.from, `${JULIET}/A`);
      t.equal(inner.attrs.to, `${ROMEO}/X`);
      const received = await waitFor(y, isCarbon('received', 'to X only'));
      t.equal(received.attrs.from, ROMEO, 'a received carbon for the other resource');
      await sleep(500);
      t.notOk(a.received.some(isCarbon('sent', 'to X only')), 'the sending resource gets no copy');
      t.same(bodies(y), [], 'Y did not get the message itself');
      await a.send(xml('message', { to: ROMEO, type: 'chat' }, xml('body', {}, 'private one'), xml('private', { xmlns: NS_CARBONS })));
      await waitFor(x, isBody('private one'));
      await waitFor(y, isBody('private one'));
      await sleep(500);
      t.notOk(b.received.some(isCarbon('sent', 'private one')), '<private/> is not copied');
      await b.iqCaller.request(xml('iq', { type: 'set' }, xml('disable', { xmlns: NS_CARBONS })));
      await a.send(xml('message', { to: ROMEO, type: 'chat' }, xml('body', {}, 'after disable')));
      await waitFor(x, isBody('after disable'));
      await sleep(500);
      t.notOk(b.received.some(isCarbon('sent', 'after disable')), 'no copies after disable');
      await Promise.all([a.stop(), b.stop(), x.stop(), y.stop()]);
    });

    t.test('RFC 6121 §8.5: priorities, a full JID that is gone, only negative priorities online', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      const x = await login('romeo', 'montague.lit', 'X');
      const z = await login('romeo', 'montague.lit', 'Z', other);
      await online(x, xml('priority', {}, '1'));
      await online(z, xml('priority', {}, '-1'));
      await sleep(500); // each sees the other's presence (own presence node)
      await juliet.send(xml('message', { to: ROMEO, type: 'chat' }, xml('body', {}, 'to the bare JID')));
      await waitFor(x, isBody('to the bare JID'));
      await juliet.send(xml('message', { to: `${ROMEO}/gone`, type: 'chat' }, xml('body', {}, 'to a gone resource')));
      await waitFor(x, isBody('to a gone resource'));
      t.pass('a bare JID and a gone full JID reach the non-negative resource');
      await sleep(500);
      t.same(bodies(z), [], 'a negative priority gets nothing addressed to the bare JID');
      await x.stop();
      await sleep(500);
      await juliet.send(xml('message', { to: ROMEO, type: 'chat' }, xml('body', {}, 'only negative online')));
      await sleep(800);
      t.same(bodies(z), [], 'with only a negative priority online the message waits (offline storage)');
      const w = await login('romeo', 'montague.lit', 'W');
      await online(w);
      const late = await waitFor(w, isBody('only negative online'));
      t.ok(late.getChild('delay', 'urn:xmpp:delay'), 'and is delivered, delayed, at the next initial presence');
      await Promise.all([juliet.stop(), z.stop(), w.stop()]);
    });

    t.test('a message to a domain the backend does not serve passes through (the backend answers)', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      await juliet.send(xml('message', { to: 'friar@verona.invalid', type: 'chat', id: 'far1' }, xml('body', {}, 'far away')));
      const err = await waitFor(juliet, (s: Element) => s.name === 'message' && s.attrs.type === 'error' && s.attrs.id === 'far1');
      t.ok(err.getChild('error'), `the backend's error (${err.getChild('error')?.children.map((c) => (typeof c === 'string' ? c : c.name)).join(',')})`);
      await juliet.stop();
    });

    t.test("a client's own pubsub requests on the proxy's nodes are refused; other pubsub passes", async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      const nodeOf = (to: string) => `xep207-proxy/chat/${createHash('sha256').update(`${JULIET}\n${to}`).digest('base64url').slice(0, 32)}`;
      const ask = (to: string | undefined, node: string, publish = false) =>
        juliet.iqCaller
          .request(xml('iq', { type: publish ? 'set' : 'get', ...(to ? { to } : {}) }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, publish ? xml('publish', { node }, xml('item', {}, xml('x', { xmlns: 'urn:example' }))) : xml('items', { node }))))
          .then(() => 'result', (e: { condition?: string; text?: string }) => `${e.condition}`);
      t.equal(await ask('pubsub.montague.lit', nodeOf(ROMEO)), 'forbidden', 'reading a chat node');
      t.equal(await ask('pubsub.montague.lit', nodeOf(ROMEO), true), 'forbidden', 'publishing into a chat node');
      t.equal(await ask(undefined, 'xep207-proxy/roster'), 'forbidden', "the user's own roster node");
      t.equal(await ask(undefined, 'urn:xmpp:avatar:metadata', true), 'result', 'a PEP publish of its own passes through');
      const owner = (to: string | undefined, child: Element, type = 'set') =>
        juliet.iqCaller
          .request(xml('iq', { type, ...(to ? { to } : {}) }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub#owner' }, child)))
          .then(() => 'result', (e: { condition?: string }) => `${e.condition}`);
      const open = xml('configure', { node: 'presence' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#node_config')), xml('field', { var: 'pubsub#access_model' }, xml('value', {}, 'open'))));
      t.equal(await owner(undefined, open), 'forbidden', "opening its own presence node's access");
      t.equal(await owner(JULIET, xml('delete', { node: 'presence' })), 'forbidden', 'deleting its own presence node (to its bare JID)');
      t.equal(await owner(undefined, xml('purge', { node: 'presence' })), 'forbidden', 'purging it');
      t.equal(await owner(undefined, xml('subscriptions', { node: 'presence' }, xml('subscription', { jid: 'mallory@montague.lit', subscription: 'subscribed' }))), 'forbidden', 'adding a subscriber behind the roster');
      // the same requests with the node's name spelled with character references (XML 1.0 §4.1): what
      // the backend reads is the same name
      const rawAsk = async (id: string, inner: string, type = 'get') => {
        await juliet.write(`<iq type='${type}' id='${id}'>${inner}</iq>`);
        const answer = await waitFor(juliet, (s: Element) => s.name === 'iq' && s.attrs.id === id);
        return answer.attrs.type === 'error' ? (answer.getChild('error')?.children.find((c): c is Element => typeof c !== 'string')?.name ?? 'error') : answer.attrs.type;
      };
      t.equal(await rawAsk('esc1', "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='xep207-proxy&#x2F;roster'/></pubsub>"), 'forbidden', "the roster node's name with a character reference");
      t.equal(await rawAsk('esc2', "<pubsub xmlns='http://jabber.org/protocol/pubsub'><items node='&#120;ep207-proxy/roster'/></pubsub>"), 'forbidden', 'another letter so spelled');
      t.equal(await rawAsk('esc3', "<pubsub xmlns='http://jabber.org/protocol/pubsub&#x23;owner'><purge node='presenc&#101;'/></pubsub>", 'set'), 'forbidden', "an owner request on the presence node, namespace and name so spelled");
      // and with the pubsub element under a prefix of its own (XML namespaces: the same element)
      t.equal(await rawAsk('pre1', "<ps:pubsub xmlns:ps='http://jabber.org/protocol/pubsub'><ps:items node='xep207-proxy/roster'/></ps:pubsub>"), 'forbidden', 'a prefixed request for the roster node');
      t.equal(await rawAsk('pre2', "<o:pubsub xmlns:o='http://jabber.org/protocol/pubsub#owner'><o:delete node='presence'/></o:pubsub>", 'set'), 'forbidden', 'a prefixed owner request deleting the presence node');
      // XEP-0060 §5.3, §5.5: a node's metadata and its items' ids, asked by disco
      const disco = (to: string | undefined, ns: 'info' | 'items', node?: string) =>
        juliet.iqCaller
          .request(xml('iq', { type: 'get', ...(to ? { to } : {}) }, xml('query', { xmlns: `http://jabber.org/protocol/disco#${ns}`, ...(node ? { node } : {}) })))
          .then(() => 'result', (e: { condition?: string }) => `${e.condition}`);
      t.equal(await disco('pubsub.montague.lit', 'items', nodeOf(ROMEO)), 'forbidden', "disco#items of a chat node: its items' ids");
      t.equal(await disco(undefined, 'info', 'xep207-proxy/roster'), 'forbidden', "disco#info of the user's own roster node");
      t.equal(await disco(undefined, 'info'), 'result', 'a disco#info of its own account passes through');
      // XEP-0060 §5.2: a listing of a service's nodes comes back without the proxy's own
      const listed = async (to: string | undefined) => {
        const answer = await juliet.iqCaller.request(xml('iq', { type: 'get', ...(to ? { to } : {}) }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })));
        return (answer.getChild('query')?.getChildren('item') ?? []).map((i: Element) => String(i.attrs.node ?? ''));
      };
      const pep = await listed(undefined);
      t.ok(pep.includes('urn:xmpp:avatar:metadata'), `its own PEP nodes are listed (${pep.join(', ')})`);
      t.notOk(pep.some((n: string) => n.startsWith('xep207-proxy/')), 'none of the proxy\'s nodes among them');
      const service = await listed('pubsub.montague.lit');
      t.notOk(service.some((n: string) => n.startsWith('xep207-proxy/')), `the pubsub service's listing has none of the proxy's nodes (${service.length} listed)`);
      const config = await juliet.iqCaller.request(xml('iq', { type: 'get' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub#owner' }, xml('configure', { node: 'presence' }))));
      const access = config.getChild('pubsub')?.getChild('configure')?.getChild('x', 'jabber:x:data')?.getChildren('field').find((f: Element) => f.attrs.var === 'pubsub#access_model')?.getChildText('value');
      t.ok(access !== undefined && access !== 'open', `reading its configuration passes, and the node is there, not opened (${access})`);
      await juliet.stop();
    });

    t.test('the backend never routed a message to a user itself', async (t) => {
      const elements = upstreamElements(cap);
      // the proxy's own sent carbons go to the sender's other resources, each a headline in the proxy's namespace
      const isCarbonCopy = (s: { name: string; attrs: Record<string, string | undefined>; raw: string }) => s.name === 'message' && s.attrs.type === 'headline' && s.raw.includes('<carbon xmlns="urn:xep207-proxy:chat:0"');
      const toUsers = elements.filter((s) => s.name === 'message' && !isCarbonCopy(s) && /^(romeo@montague\.lit|paris@capulet\.lit|juliet@capulet\.lit)/.test(s.attrs.to ?? ''));
      t.same(toUsers.map((s) => s.raw.slice(0, 100)), [], 'no <message/> to a user on the backend leg');
      const copies = elements.filter(isCarbonCopy);
      t.ok(copies.length > 0, 'sent carbons went to the other resources');
      t.ok(copies.every((s) => { const inner = /<message[^>]* from="([^"/]+)\//.exec(s.raw.slice(s.raw.indexOf('<carbon')))?.[1]; return inner !== undefined && (s.attrs.to ?? '').startsWith(`${inner}/`); }), "each to the sender's own full JID");
      t.ok(elements.some((s) => s.name === 'iq' && s.raw.includes('xep207-proxy/chat/') && s.raw.includes('<publish')), 'published to chat nodes instead');
    });
  });
}
