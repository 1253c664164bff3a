// XEP-0207 listings 1-11 (fixtures/xep-0207, corrected as fixtures/README.md says) through the rule
// code the proxy runs: each legacy listing becomes its pubsub listing, each notification becomes the
// legacy stanza again. The backend is a recorder that answers requests (test/harness/recorder.ts).
import t from 'tap';
import type { Element } from 'ltx';
import { defaultRules } from '../src/rules/index.js';
import { parseElement, xml } from '../src/stream/xml.js';
import { NODE_INBOX, NODE_ROSTER } from '../src/rules/account.js';
import { toStored, newEntry } from '../src/rules/roster-item.js';
import { bind, canon, listing, offer, recordingContext, type Recorder } from './harness/recorder.js';
import { StanzaError } from '../src/xmpp/stanza-error.js';

const PS = 'http://jabber.org/protocol/pubsub';

function find(list: Element[], pred: (el: Element) => boolean): Element | undefined {
  return list.find(pred);
}

const isPublishTo = (node: string) => (iq: Element) => iq.getChild('pubsub', PS)?.getChild('publish')?.attrs.node === node;

async function session(jid: string, identity = 'ejabberd', setup?: (rec: Recorder) => void) {
  const rules = defaultRules();
  const rec = recordingContext(jid, { identity });
  setup?.(rec);
  await bind(rules, rec);
  return { rules, rec };
}

/** the client's initial presence, so that presence is delivered to it */
async function online(s: { rules: ReturnType<typeof defaultRules>; rec: Recorder }) {
  await offer(s.rules, s.rec, xml('presence'), 'client');
  s.rec.toClient.length = 0;
  s.rec.requests.length = 0;
}

t.test('listing 1 (client presence) -> listing 3 (publish to the presence node)', async (t) => {
  for (const [identity, model] of [['ejabberd', 'authorize'], ['Prosody', 'whitelist']]) {
    const s = await session('juliet@capulet.lit/balcony', identity);
    s.rec.requests.length = 0;
    const claimed = await offer(s.rules, s.rec, listing(1)[0]!, 'client');
    t.ok(claimed, 'claimed: never passed to the backend');
    const publish = find(s.rec.requests, isPublishTo('presence'));
    t.ok(publish, 'published');
    const expected = canon(listing(3)[0]!).replace('<value>authorize</value>', `<value>${model}</value>`);
    t.equal(canon(publish!), expected, `${identity}: the publish of listing 3 (item id = resource, from = bound JID)`);
    t.equal(s.rec.toBackend.filter((e) => e.name === 'presence' && e.children.length > 0).length, 0, 'no presence payload outside the item');
  }
});

t.test('a forged from is never trusted: the bound JID goes into the item', async (t) => {
  const s = await session('juliet@capulet.lit/balcony');
  s.rec.requests.length = 0;
  await offer(s.rules, s.rec, xml('presence', { from: 'romeo@montague.lit/forged' }, xml('status', {}, 'Moping')), 'client');
  const publish = find(s.rec.requests, isPublishTo('presence'))!;
  const payload = publish.getChild('pubsub')!.getChild('publish')!.getChild('item')!.getChild('presence')!;
  t.equal(payload.attrs.from, 'juliet@capulet.lit/balcony');
});

t.test('listing 4 (notification) -> listing 2 (presence to each subscriber)', async (t) => {
  const notes = listing(4);
  const expected = listing(2);
  const subscribers = ['romeo@montague.lit/mobile', 'nurse@capulet.lit/chamber', 'benvolio@montague.lit/pda'];
  for (let i = 0; i < subscribers.length; i++) {
    const s = await session(subscribers[i]!, 'ejabberd', (rec) => {
      // the subscriber's roster says it gets Juliet's presence
      rec.nodes.set(NODE_ROSTER, [xml('item', { id: 'juliet@capulet.lit' }, toStored({ ...newEntry('juliet@capulet.lit'), subscription: 'to', listed: true }))]);
    });
    await online(s);
    const claimed = await offer(s.rules, s.rec, notes[i]!, 'backend');
    t.ok(claimed);
    t.equal(s.rec.toClient.length, 1, 'one presence');
    t.equal(canon(s.rec.toClient[0]!), canon(expected[i]!), subscribers[i]!);
  }
});

t.test('a notification from somebody the roster does not follow is dropped', async (t) => {
  const s = await session('romeo@montague.lit/mobile');
  await online(s);
  t.ok(await offer(s.rules, s.rec, listing(4)[0]!, 'backend'), 'claimed');
  t.equal(s.rec.toClient.length, 0, 'nothing delivered');
});

t.test('listing 5 (subscribe) -> listing 9 (pubsub subscribe) and the request in the owner\'s inbox', async (t) => {
  const s = await session('bard@shakespeare.lit/globe');
  s.rec.requests.length = 0;
  t.ok(await offer(s.rules, s.rec, listing(5)[0]!, 'client'), 'claimed');
  const sub = find(s.rec.requests, (iq) => iq.getChild('pubsub', PS)?.getChild('subscribe') !== undefined);
  t.equal(canon(sub!), canon(listing(9)[0]!), 'listing 9');
  const inbox = find(s.rec.requests, isPublishTo(NODE_INBOX))!;
  t.equal(inbox.attrs.to, 'juliet@capulet.lit', "to Juliet's PEP service");
  const item = inbox.getChild('pubsub')!.getChild('publish')!.getChild('item')!;
  t.equal(item.attrs.id, 'sub:bard@shakespeare.lit');
  t.same(item.getChild('presence')!.attrs, { xmlns: 'jabber:client', type: 'subscribe', from: 'bard@shakespeare.lit', to: 'juliet@capulet.lit' });
  t.ok(find(s.rec.requests, isPublishTo(NODE_ROSTER)), "Bard's roster now has Juliet (ask='subscribe')");

  const p = await session('bard@shakespeare.lit/globe', 'Prosody');
  p.rec.requests.length = 0;
  await offer(p.rules, p.rec, listing(5)[0]!, 'client');
  t.notOk(find(p.rec.requests, (iq) => iq.getChild('pubsub', PS)?.getChild('subscribe') !== undefined), 'Prosody (whitelist): no pubsub subscribe, it would be refused');
  t.ok(find(p.rec.requests, isPublishTo(NODE_INBOX)), 'the inbox carries the request');
});

/** Juliet's session with Bard's request arrived in her inbox (notification), online and interested. */
async function julietWithRequest() {
  const s = await session('juliet@capulet.lit/balcony');
  await offer(s.rules, s.rec, xml('iq', { type: 'get', id: 'r1' }, xml('query', { xmlns: 'jabber:iq:roster' })), 'client');
  await online(s);
  const note = xml(
    'message',
    { from: 'juliet@capulet.lit', to: 'juliet@capulet.lit' },
    xml('event', { xmlns: 'http://jabber.org/protocol/pubsub#event' }, xml('items', { node: NODE_INBOX }, xml('item', { id: 'sub:bard@shakespeare.lit', publisher: 'bard@shakespeare.lit/globe' }, xml('presence', { xmlns: 'jabber:client', type: 'subscribe', from: 'bard@shakespeare.lit', to: 'juliet@capulet.lit' })))),
  );
  t.ok(await offer(s.rules, s.rec, note, 'backend'), 'inbox notification claimed');
  return s;
}

t.test('the inbox item -> listing 6 (the request delivered to the owner)', async (t) => {
  const s = await julietWithRequest();
  const delivered = s.rec.toClient.filter((e) => e.name === 'presence');
  t.equal(delivered.length, 1);
  t.equal(canon(delivered[0]!), canon(listing(6)[0]!), 'listing 6');
  t.notOk(s.rec.toClient.some((e) => e.name === 'iq'), 'no roster push: a pending request is not a roster item');
});

t.test('an inbox item whose publisher is not its sender is ignored', async (t) => {
  const s = await session('juliet@capulet.lit/balcony');
  await online(s);
  const forged = xml(
    'message',
    { from: 'juliet@capulet.lit', to: 'juliet@capulet.lit' },
    xml('event', { xmlns: 'http://jabber.org/protocol/pubsub#event' }, xml('items', { node: NODE_INBOX }, xml('item', { id: 'sub:bard@shakespeare.lit', publisher: 'mallory@evil.lit/x' }, xml('presence', { xmlns: 'jabber:client', type: 'subscribe', from: 'bard@shakespeare.lit', to: 'juliet@capulet.lit' })))),
  );
  t.ok(await offer(s.rules, s.rec, forged, 'backend'));
  t.equal(s.rec.toClient.length, 0, 'nothing delivered');
});

t.test('listing 10 (authorization form) is consumed, never shown to the client', async (t) => {
  const s = await session('juliet@capulet.lit/balcony');
  await online(s);
  t.ok(await offer(s.rules, s.rec, listing(10)[0]!, 'backend'), 'claimed');
  t.equal(s.rec.toClient.length, 0);
});

t.test('listing 7 (approval) -> listing 11 (subscription modification) and listing 8 (roster push)', async (t) => {
  const s = await julietWithRequest();
  s.rec.toClient.length = 0;
  s.rec.requests.length = 0;
  t.ok(await offer(s.rules, s.rec, listing(7)[0]!, 'client'), 'claimed');
  const modify = find(s.rec.requests, (iq) => iq.getChild('pubsub', 'http://jabber.org/protocol/pubsub#owner')?.getChild('subscriptions') !== undefined);
  t.equal(canon(modify!), canon(listing(11)[0]!), 'listing 11 (corrected)');
  const push = s.rec.toClient.find((e) => e.name === 'iq');
  t.equal(canon(push!), canon(listing(8)[0]!), 'listing 8 (corrected)');
  const answer = find(s.rec.requests, isPublishTo(NODE_INBOX))!;
  t.equal(answer.attrs.to, 'bard@shakespeare.lit', "the approval goes to Bard's inbox");
  t.equal(answer.getChild('pubsub')!.getChild('publish')!.getChild('item')!.attrs.id, 'auth:juliet@capulet.lit');

  const p = await session('juliet@capulet.lit/balcony', 'Prosody');
  p.rec.requests.length = 0;
  await offer(p.rules, p.rec, xml('presence', { to: 'bard@shakespeare.lit', type: 'subscribed' }), 'client');
  t.equal(p.rec.requests.length, 1, 'Prosody, nothing pending: a pre-approval, stored in the roster only');
  const q = await julietProsodyWithRequest();
  q.rec.requests.length = 0;
  await offer(q.rules, q.rec, listing(7)[0]!, 'client');
  const aff = find(q.rec.requests, (iq) => iq.getChild('pubsub', 'http://jabber.org/protocol/pubsub#owner')?.getChild('affiliations') !== undefined);
  t.ok(aff, 'Prosody (whitelist): member affiliation first');
  t.equal(aff!.getChild('pubsub')!.getChild('affiliations')!.getChild('affiliation')!.attrs.affiliation, 'member');
  t.ok(q.rec.requests.indexOf(aff!) < q.rec.requests.findIndex((iq) => iq.getChild('pubsub')?.getChild('subscriptions') !== undefined), 'then the subscription');
});

async function julietProsodyWithRequest() {
  const s = await session('juliet@capulet.lit/balcony', 'Prosody');
  await online(s);
  const note = xml(
    'message',
    { from: 'juliet@capulet.lit', to: 'juliet@capulet.lit' },
    xml('event', { xmlns: 'http://jabber.org/protocol/pubsub#event' }, xml('items', { node: NODE_INBOX }, xml('item', { id: 'sub:bard@shakespeare.lit', publisher: 'bard@shakespeare.lit' }, xml('presence', { xmlns: 'jabber:client', type: 'subscribe', from: 'bard@shakespeare.lit', to: 'juliet@capulet.lit' })))),
  );
  await offer(s.rules, s.rec, note, 'backend');
  return s;
}

t.test('an inbox item read again is not applied again, even after the contact was removed', async (t) => {
  const s = await session('juliet@capulet.lit/balcony');
  await offer(s.rules, s.rec, xml('iq', { type: 'get', id: 'r1' }, xml('query', { xmlns: 'jabber:iq:roster' })), 'client');
  await online(s);
  const note = () =>
    xml(
      'message',
      { from: 'juliet@capulet.lit', to: 'juliet@capulet.lit' },
      xml('event', { xmlns: 'http://jabber.org/protocol/pubsub#event' }, xml('items', { node: NODE_INBOX }, xml('item', { id: 'sub:bard@shakespeare.lit', publisher: 'bard@shakespeare.lit/globe' },
        xml('presence', { xmlns: 'jabber:client', type: 'subscribe', from: 'bard@shakespeare.lit', to: 'juliet@capulet.lit' }, xml('inbox', { xmlns: 'urn:xep207-proxy:inbox:0', nonce: 'n-1' }))))),
    );
  await offer(s.rules, s.rec, note(), 'backend');
  const first = s.rec.toClient.filter((e) => e.name === 'presence' && e.attrs.type === 'subscribe');
  t.equal(first.length, 1, 'delivered once');
  t.notOk(first[0]!.getChild('inbox'), 'the nonce is the proxy\'s: not shown to the client');
  await offer(s.rules, s.rec, note(), 'backend');
  t.equal(s.rec.toClient.filter((e) => e.name === 'presence' && e.attrs.type === 'subscribe').length, 1, 'the same item again: nothing');
  // Juliet approves then removes Bard: the entry becomes a tombstone that still knows the nonce
  await offer(s.rules, s.rec, xml('presence', { to: 'bard@shakespeare.lit', type: 'subscribed' }), 'client');
  await offer(s.rules, s.rec, xml('iq', { type: 'set', id: 'rm' }, xml('query', { xmlns: 'jabber:iq:roster' }, xml('item', { jid: 'bard@shakespeare.lit', subscription: 'remove' }))), 'client');
  t.ok(s.rec.toClient.some((e) => e.name === 'iq' && e.getChild('query')?.getChild('item')?.attrs.subscription === 'remove'), 'removal pushed');
  s.rec.toClient.length = 0;
  await offer(s.rules, s.rec, note(), 'backend');
  t.equal(s.rec.toClient.length, 0, 'an old request that could not be retracted does not come back');
});

// ---- §6 one-to-one messages (listings 18-20, corrected: fixtures/README.md) ----

const isCreate = (iq: Element) => iq.getChild('pubsub', PS)?.getChild('create') !== undefined;
const isOwner = (child: string) => (iq: Element) => iq.getChild('pubsub', 'http://jabber.org/protocol/pubsub#owner')?.getChild(child) !== undefined;

t.test('a client message -> listing 18 (the node, made once) and listing 19 (the publish)', async (t) => {
  const s = await session('juliet@capulet.lit/balcony');
  await online(s);
  const message = xml('message', { to: 'romeo@montague.lit', type: 'chat', id: 'm1', from: 'tybalt@capulet.lit/forged' }, xml('body', {}, 'wherefore art thou?'));
  t.ok(await offer(s.rules, s.rec, message, 'client'), 'claimed: the backend never routes it');
  const [create, affiliations, subscriptions] = listing(18);
  t.equal(canon(find(s.rec.requests, isCreate)!), canon(create!), 'listing 18: the node, whitelist, publishers');
  t.equal(canon(find(s.rec.requests, isOwner('affiliations'))!), canon(affiliations!), 'the recipient a member');
  t.equal(canon(find(s.rec.requests, isOwner('subscriptions'))!), canon(subscriptions!), 'the recipient subscribed, not the sender (its carbons come from its proxy)');
  const publishTo = (prefix: string) => (iq: Element) => (iq.getChild('pubsub', PS)?.getChild('publish')?.attrs.node as string | undefined)?.startsWith(prefix) === true;
  const announced = find(s.rec.requests, publishTo('xep207-proxy/inbox'));
  t.equal(announced?.attrs.to, 'romeo@montague.lit', "the node announced in the recipient's inbox");
  t.equal(announced?.getChild('pubsub')?.getChild('publish')?.getChild('item')?.attrs.id, `chat:${create!.getChild('pubsub')!.getChild('create')!.attrs.node}`, 'item id chat:<node>');
  const publish = find(s.rec.requests, publishTo('xep207-proxy/chat/'))!;
  const item = publish.getChild('pubsub')!.getChild('publish')!.getChild('item')!;
  const stamp = item.getChild('message')!.getChild('sent', 'urn:xep207-proxy:chat:0')!.attrs.at as string;
  t.match(stamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'the send time is kept');
  const expected = canon(listing(19)[0]!).replace('ITEM', item.attrs.id as string).replace('STAMP', stamp);
  t.equal(canon(publish), expected, 'listing 19, from = the bound JID, not the forged one');
  s.rec.requests.length = 0;
  await offer(s.rules, s.rec, xml('message', { to: 'romeo@montague.lit', type: 'chat' }, xml('body', {}, 'again')), 'client');
  t.notOk(find(s.rec.requests, isCreate), 'the node is made once per proxy');
});

t.test("listing 20 -> the recipient's message; the sender's own copy is not an incoming message", async (t) => {
  const [toRomeo, toJuliet, legacy] = listing(20);
  const romeo = await session('romeo@montague.lit/mobile');
  await online(romeo);
  t.ok(await offer(romeo.rules, romeo.rec, toRomeo!, 'backend'), 'claimed');
  t.equal(romeo.rec.toClient.length, 1, 'one message');
  t.equal(canon(romeo.rec.toClient[0]!, []), canon(legacy!, ['side']), 'from the sender, payload and id kept, the stamp removed');
  const juliet = await session('juliet@capulet.lit/balcony');
  await online(juliet);
  t.ok(await offer(juliet.rules, juliet.rec, toJuliet!, 'backend'), 'claimed');
  t.equal(juliet.rec.toClient.length, 0, "the sender's own notification (§6's bcc, a node of an earlier version) is never shown");
  const unsub = juliet.rec.requests.filter((iq) => iq.getChild('pubsub', PS)?.getChild('unsubscribe') !== undefined);
  t.same(unsub.map((iq) => iq.getChild('pubsub')!.getChild('unsubscribe')!.attrs.jid), ['juliet@capulet.lit'], 'the sending session takes its bare JID off that node');
  await offer(juliet.rules, juliet.rec, toJuliet!, 'backend');
  t.equal(juliet.rec.requests.filter((iq) => iq.getChild('pubsub', PS)?.getChild('unsubscribe') !== undefined).length, 1, 'once');
});

t.test("a message to the user's own JIDs is not mapped (the backend routes it), whatever their case", async (t) => {
  const s = await session('juliet@capulet.lit/balcony');
  await online(s);
  const before = s.rec.requests.length;
  for (const to of ['juliet@capulet.lit', 'juliet@capulet.lit/balcony', 'Juliet@Capulet.LIT/other', 'JULIET@CAPULET.LIT']) {
    t.notOk(await offer(s.rules, s.rec, xml('message', { to, type: 'chat' }, xml('body', {}, 'to myself')), 'client'), `${to}: passed on`);
  }
  t.equal(s.rec.requests.length, before, 'no request for any of them');
  for (const to of ['juliet@capulet.lit.example', 'juliet@capulet.litx/balcony', 'juliett@capulet.lit', 'romeo@montague.lit']) {
    t.ok(await offer(s.rules, s.rec, xml('message', { to, type: 'chat' }, xml('body', {}, 'to another')), 'client'), `${to}: mapped`);
  }
});

t.test('a chat item whose sender does not match its node is dropped', async (t) => {
  const forged = parseElement(listing(20)[0]!.toString().replace(/juliet@capulet\.lit\/balcony/g, 'nurse@capulet.lit/chamber'));
  const romeo = await session('romeo@montague.lit/mobile');
  await online(romeo);
  t.ok(await offer(romeo.rules, romeo.rec, forged, 'backend'), 'claimed');
  t.equal(romeo.rec.toClient.length, 0, 'the node names juliet as its only writer: nothing delivered');
});

t.test('a publish the backend refuses: a message error to the sender, with the message id', async (t) => {
  const rules = defaultRules();
  const rec = recordingContext('juliet@capulet.lit/balcony', {
    answer: (iq) => (iq.getChild('pubsub', PS)?.getChild('publish')?.attrs.node?.toString().startsWith('xep207-proxy/chat/') ? new StanzaError('not-acceptable', 'too big') : undefined),
  });
  await bind(rules, rec);
  await online({ rules, rec });
  t.ok(await offer(rules, rec, xml('message', { to: 'romeo@montague.lit', type: 'chat', id: 'm9' }, xml('body', {}, 'x')), 'client'), 'claimed');
  await new Promise((r) => setImmediate(r));
  const err = rec.toClient.find((e) => e.name === 'message' && e.attrs.type === 'error');
  t.equal(err?.attrs.id, 'm9', "the message's id");
  t.equal(err?.attrs.from, 'romeo@montague.lit', 'from the recipient, as a legacy server reports it');
  t.ok(err?.getChild('error')?.getChild('not-acceptable', 'urn:ietf:params:xml:ns:xmpp-stanzas'), "the backend's condition");
});
