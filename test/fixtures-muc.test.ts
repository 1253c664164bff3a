// XEP-0207 §5 listings 12-17 (fixtures/xep-0207, corrected as fixtures/README.md says) through the
// rule code the proxy runs: a join becomes the subscriptions and the occupant item of listing 13, a
// groupchat message the publish of listing 16, a notification (listing 17) the room's message again.
import t, { type Test } from 'tap';
import type { Element } from 'ltx';
import { defaultRules } from '../src/rules/index.js';
import { xml } from '../src/stream/xml.js';
import { bind, canon, listing, offer, recordingContext } from './harness/recorder.js';

const PS = 'http://jabber.org/protocol/pubsub';
const ROOM = 'characters@conference.capulet.lit';

async function joined(t: Test, jid: string, nick: string) {
  const rules = defaultRules();
  const rec = recordingContext(jid);
  await bind(rules, rec);
  rec.requests.length = 0;
  rec.toBackend.length = 0; // the backend leg's own presence at bind
  const join = nick === 'JC' ? listing(12)[0]! : xml('presence', { to: `${ROOM}/${nick}` });
  t.ok(await offer(rules, rec, join, 'client'), 'the join is claimed: never passed to the backend');
  return { rules, rec };
}

const op = (name: string) => (iq: Element) => iq.getChild('pubsub', PS)?.getChild(name) !== undefined;

t.test('listing 12 (join) -> listing 13 (full-JID subscriptions, no roomnick; the nick in the occupants node)', async (t) => {
  const s = await joined(t, 'juliet@capulet.lit/balcony', 'JC');
  const [subMessages, subOccupants, occupant] = listing(13);
  const subs = s.rec.requests.filter(op('subscribe')).map((iq) => canon(iq));
  t.same(subs.sort(), [canon(subMessages!), canon(subOccupants!)].sort(), 'both room nodes, the bound full JID');
  const publishes = s.rec.requests.filter(op('publish')).filter((iq) => iq.getChild('pubsub')!.getChild('publish')!.attrs.node === `xep207-proxy/muc/${ROOM}/occupants`);
  // the proxy instance's id is random per process: the fixture says INSTANCE
  const sameInstance = (iq: Element) => canon(iq).replace(/instance="[^"]+"/, 'instance="INSTANCE"');
  t.same(publishes.map(sameInstance), [canon(occupant!)], 'one occupant item, id = nick, naming the proxy instance');
  const creates = s.rec.requests.filter(op('create')).map((iq) => iq.getChild('pubsub')!.getChild('create')!.attrs.node);
  t.same(creates, [`xep207-proxy/muc/${ROOM}`, `xep207-proxy/muc/${ROOM}/occupants`, `xep207-proxy/muc/${ROOM}/meta`], 'the nodes, made at the first join');
  const self = s.rec.toClient.find((e) => e.name === 'presence' && e.attrs.from === `${ROOM}/JC`)!;
  const codes = self.getChild('x', 'http://jabber.org/protocol/muc#user')!.getChildren('status').map((c) => c.attrs.code);
  t.same(codes, ['110', '201'], 'self-presence: this join created the room');
  t.equal(s.rec.toBackend.length, 0, 'no presence to the backend');
});

t.test('listing 14 (groupchat) -> listing 16 (publish, from the verified nick)', async (t) => {
  const s = await joined(t, 'juliet@capulet.lit/balcony', 'JC');
  s.rec.requests.length = 0;
  const message = listing(14)[0]!;
  message.attrs.from = 'tybalt@capulet.lit/forged';
  t.ok(await offer(s.rules, s.rec, message, 'client'), 'claimed');
  const publish = s.rec.requests.find(op('publish'))!;
  const item = publish.getChild('pubsub')!.getChild('publish')!.getChild('item')!;
  const stamp = item.getChild('message')!.getChild('sent', 'urn:xep207-proxy:chat:0')!.attrs.at as string;
  const expected = canon(listing(16)[0]!).replace('ITEM', item.attrs.id as string).replace('STAMP', stamp);
  t.equal(canon(publish), expected, 'listing 16');
});

t.test('a groupchat message from a non-occupant is refused', async (t) => {
  const rules = defaultRules();
  const rec = recordingContext('nurse@capulet.lit/chamber');
  await bind(rules, rec);
  rec.requests.length = 0;
  t.ok(await offer(rules, rec, listing(14)[0]!, 'client'), 'claimed');
  t.notOk(rec.requests.some(op('publish')), 'nothing published');
  t.ok(rec.toClient[0]?.getChild('error')?.getChild('not-acceptable'), 'not-acceptable');
});

t.test('listing 17 (notification) -> listing 15 (the room message for each occupant)', async (t) => {
  const s = await joined(t, 'romeo@montague.lit/mobile', 'Romeo');
  s.rec.toClient.length = 0;
  const [note, legacy] = listing(17);
  t.ok(await offer(s.rules, s.rec, note!, 'backend'), 'claimed');
  t.equal(s.rec.toClient.length, 1);
  t.equal(canon(s.rec.toClient[0]!, ['to']), canon(legacy!, ['side', 'to']), 'from room/nick, the stamp removed');
  t.equal(s.rec.toClient[0]!.attrs.to, 'romeo@montague.lit/mobile');
});

t.test('--muc-history sets how many messages a new room keeps (its messages node max_items)', async (t) => {
  for (const [history, expected] of [[undefined, '20'], [3, '3']] as const) {
    const rules = defaultRules(history ? { mucHistory: history } : {});
    const rec = recordingContext('juliet@capulet.lit/balcony');
    await bind(rules, rec);
    rec.requests.length = 0;
    await offer(rules, rec, xml('presence', { to: `${ROOM}/JC` }), 'client');
    const create = rec.requests.find((iq) => iq.getChild('pubsub', PS)?.getChild('create')?.attrs.node === `xep207-proxy/muc/${ROOM}`)!;
    const field = create.getChild('pubsub')!.getChild('configure')!.getChild('x')!.getChildren('field').find((f) => f.attrs.var === 'pubsub#max_items');
    t.equal(field?.getChildText('value'), expected, `history ${history ?? 'default'}: max_items ${expected}`);
  }
});

t.test('--muc-prefix names the MUC service of each served domain (chat.<D> instead of conference.<D>)', async (t) => {
  const rules = defaultRules({ mucPrefix: 'chat' });
  const rec = recordingContext('juliet@capulet.lit/balcony');
  await bind(rules, rec);
  rec.requests.length = 0;
  t.ok(await offer(rules, rec, xml('presence', { to: 'hall@chat.capulet.lit/JC' }), 'client'), 'a join to chat.capulet.lit is claimed');
  t.ok(rec.requests.some((iq) => iq.getChild('pubsub', PS)?.getChild('create')?.attrs.node === 'xep207-proxy/muc/hall@chat.capulet.lit'), "the room's nodes are made");
  rec.requests.length = 0;
  await offer(rules, rec, xml('presence', { to: `${ROOM}/JC` }), 'client');
  t.notOk(rec.requests.some((iq) => iq.getChild('pubsub', PS) !== undefined), "conference.capulet.lit is then another server's service: no room of the proxy's");
  const id = 'items1';
  t.notOk(await offer(rules, rec, xml('iq', { type: 'get', id, to: 'capulet.lit' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })), 'client'), "the server's disco#items goes to the backend");
  rec.toClient.length = 0;
  await offer(rules, rec, xml('iq', { type: 'result', id, from: 'capulet.lit', to: 'juliet@capulet.lit/balcony' }, xml('query', { xmlns: 'http://jabber.org/protocol/disco#items' })), 'backend');
  const items = rec.toClient.find((e) => e.name === 'iq')?.getChild('query')?.getChildren('item').map((i) => i.attrs.jid);
  t.same(items, ['chat.capulet.lit'], 'and its answer lists chat.capulet.lit');
});
