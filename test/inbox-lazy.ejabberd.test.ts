// The inbox made when first needed (ejabberd's profile, src/rules/inbox-lazy.ts): a first login
// makes no inbox; a request to a user without one waits in the sender's chat node to the user and
// reaches the user live if online, or at its next initial presence if not; the inbox is made then,
// and later requests go there. Two proxy instances, @xmpp/client sessions, the backend's captured
// stream read for what was written where.
import t from 'tap';
import type { Element } from 'ltx';
import { twoProxies } from './harness/two-proxies.js';
import { RawClient, waitFor, xml } from './harness/xmpp.js';
import { PASSWORD, isPresence, isPush, rosterOf, sessions } from './harness/roster.js';
import { NS_CHAT, chatNode, waitingNode } from '../src/rules/chat-nodes.js';
import { NS_INBOX } from '../src/rules/subscription-ops.js';

const USERS: Array<[string, string, string]> = [
  ['juliet', 'capulet.lit', PASSWORD],
  ['romeo', 'montague.lit', PASSWORD],
  ['nurse', 'capulet.lit', PASSWORD],
  ['paris', 'capulet.lit', PASSWORD],
  ['tybalt', 'capulet.lit', PASSWORD],
  ['benvolio', 'montague.lit', PASSWORD],
  ['mercutio', 'montague.lit', PASSWORD], // straight at the backend only
];
const JULIET = 'juliet@capulet.lit';
const ROMEO = 'romeo@montague.lit';
const NURSE = 'nurse@capulet.lit';
const PARIS = 'paris@capulet.lit';
const TYBALT = 'tybalt@capulet.lit';
const BENVOLIO = 'benvolio@montague.lit';

const INBOX_CREATE = /<create node=["']xep207-proxy\/inbox["']/g;
const inboxPublishTo = (jid: string) => new RegExp(`<iq[^>]*to=["']${jid.replace('.', '\\.')}["'][^>]*>\\s*<pubsub[^>]*>\\s*<publish node=["']xep207-proxy/inbox["']`, 'g');
const count = (s: string, re: RegExp) => (s.match(re) ?? []).length;

t.test('the inbox made when first needed, on ejabberd', async (t) => {
  const { backend, cap, proxy, other } = await twoProxies(t, 'ejabberd', USERS);
  const { login, online } = sessions(t, PASSWORD, () => proxy);

  t.test('a first login makes no inbox', async (t) => {
    const before = cap.toBackend().length;
    for (const [u, d] of USERS.filter(([u]) => u !== 'paris' && u !== 'mercutio')) await (await login(u, d, 'first')).stop();
    const sent = cap.toBackend().slice(before);
    t.equal(count(sent, /<create node=["']presence["']/g), 5, 'five presence nodes');
    t.equal(count(sent, INBOX_CREATE), 0, 'no inbox');
  });

  t.test('an online user without an inbox gets a request live; its inbox is made then; the next request goes there', async (t) => {
    const juliet = await login('juliet', 'capulet.lit', 'balcony');
    const romeo = await login('romeo', 'montague.lit', 'orchard', other);
    await Promise.all([online(juliet), online(romeo)]);
    const before = cap.toBackend().length;
    await romeo.send(xml('presence', { to: JULIET, type: 'subscribe' }, xml('status', {}, 'It is my lady')));
    const req = await waitFor(juliet, isPresence(ROMEO, 'subscribe'), 8000);
    t.equal(req.getChildText('status'), 'It is my lady', 'the request as sent, its status kept');
    const sent = () => cap.toBackend().slice(before);
    t.match(sent(), new RegExp(`<publish node=["']${chatNode(ROMEO, JULIET)}["']>\\s*<item id=["']sub:${ROMEO}`), "left in romeo's chat node to juliet");
    const made = Date.now();
    while (count(sent(), INBOX_CREATE) === 0 && Date.now() - made < 5000) await new Promise((r) => setTimeout(r, 50));
    t.equal(count(sent(), INBOX_CREATE), 1, "juliet's inbox made once the request came");
    // juliet approves: romeo (who has no inbox either) gets it the same way
    await juliet.send(xml('presence', { to: ROMEO, type: 'subscribed' }));
    await waitFor(romeo, isPush(JULIET, { subscription: 'to' }), 8000);
    // the nurse asks juliet: her inbox exists now
    const nurse = await login('nurse', 'capulet.lit', 'kitchen');
    await online(nurse);
    const mark = cap.toBackend().length;
    await nurse.send(xml('presence', { to: JULIET, type: 'subscribe' }));
    await waitFor(juliet, isPresence(NURSE, 'subscribe'), 8000);
    const later = cap.toBackend().slice(mark);
    t.equal(count(later, inboxPublishTo(JULIET)), 1, "the nurse's request went to juliet's inbox");
    t.notMatch(later, new RegExp(`<publish node=["']${chatNode(NURSE, JULIET)}["']`), 'not to a chat node');
    t.same((await rosterOf(juliet)).get(ROMEO)?.attrs.subscription, 'from', 'romeo subscribed to juliet');
    await Promise.all([juliet.stop(), romeo.stop(), nurse.stop()]);
  });

  t.test('a request to an offline user without an inbox arrives at its next initial presence, once', async (t) => {
    // nobody has asked the nurse yet: she has no inbox
    const tybalt = await login('tybalt', 'capulet.lit', 'street');
    await online(tybalt);
    const before = cap.toBackend().length;
    await tybalt.send(xml('presence', { to: NURSE, type: 'subscribe' }));
    await new Promise((r) => setTimeout(r, 1000));
    t.notOk(tybalt.received.some((s: Element) => s.name === 'presence' && s.attrs.type === 'error'), 'accepted');
    t.match(cap.toBackend().slice(before), new RegExp(`<publish node=["']${chatNode(TYBALT, NURSE)}["']>\\s*<item id=["']sub:${TYBALT}`), "left in tybalt's chat node to the nurse");
    const nurse = await login('nurse', 'capulet.lit', 'bed', other);
    await rosterOf(nurse);
    await new Promise((r) => setTimeout(r, 300));
    t.notOk(nurse.received.some(isPresence(TYBALT, 'subscribe')), 'nothing before initial presence');
    await nurse.send(xml('presence'));
    await waitFor(nurse, isPresence(TYBALT, 'subscribe'), 8000);
    await nurse.send(xml('presence', { to: TYBALT, type: 'unsubscribed' }));
    await waitFor(tybalt, isPush(NURSE, { subscription: 'none', ask: undefined }), 8000);
    await nurse.stop();
    // the next login does not get the request again, and reads her inbox, made at the catch-up
    const mark = cap.toBackend().length;
    const again = await login('nurse', 'capulet.lit', 'chapel');
    await online(again);
    await new Promise((r) => setTimeout(r, 1500));
    t.notOk(again.received.some(isPresence(TYBALT, 'subscribe')), 'denied: not delivered again');
    t.notMatch(cap.toBackend().slice(mark), /<items node=["']xep207-proxy\/waiting\//, 'the waiting node is not read any more');
    await Promise.all([again.stop(), tybalt.stop()]);
  });

  t.test("a user who never logged in gets a request at its first login's initial presence", async (t) => {
    const nurse = await login('nurse', 'capulet.lit', 'kitchen');
    await online(nurse);
    await nurse.send(xml('presence', { to: PARIS, type: 'subscribe' }));
    await new Promise((r) => setTimeout(r, 1000));
    t.notOk(nurse.received.some((s: Element) => s.name === 'presence' && s.attrs.type === 'error'), 'accepted');
    const paris = await login('paris', 'capulet.lit', 'church', other);
    await online(paris);
    await waitFor(paris, isPresence(NURSE, 'subscribe'), 8000);
    await paris.send(xml('presence', { to: NURSE, type: 'subscribed' }));
    await waitFor(nurse, isPush(PARIS, { subscription: 'to' }), 8000);
    await Promise.all([paris.stop(), nurse.stop()]);
  });

  t.test('a later login of a user nobody has contacted reads the waiting node, not the delivery markers', async (t) => {
    const mark = cap.toBackend().length;
    const benvolio = await login('benvolio', 'montague.lit', 'square');
    await online(benvolio);
    await new Promise((r) => setTimeout(r, 1000));
    const sent = cap.toBackend().slice(mark);
    t.equal(count(sent, /<items node=["']xep207-proxy\/waiting\//g), 1, 'the waiting node read once');
    t.equal(count(sent, /<items node=["']xep207-proxy\/delivered["']/g), 0, 'no markers read: an empty waiting node says there are none');
    t.equal(count(sent, INBOX_CREATE), 0, 'no inbox made');
    await benvolio.stop();
  });

  t.test("a request and a message forged in a node squatting another sender's name are not taken", async (t) => {
    // mercutio, straight at the backend, makes the node named for romeo -> benvolio first, without
    // the publisher stamp, announces it in benvolio's waiting node and leaves a subscribe "from romeo"
    const node = chatNode(ROMEO, BENVOLIO);
    const waiting = waitingNode(BENVOLIO);
    const direct = await RawClient.login(backend.port, 'montague.lit', 'mercutio', PASSWORD, 'direct');
    t.teardown(() => direct.close());
    const NS = 'http://jabber.org/protocol/pubsub';
    const steps = [
      `<create node='${node}'/>`,
      `<publish node='${waiting}'><item id='${node}'><chat xmlns='${NS_CHAT}' node='${node}'/></item></publish>`,
      `<publish node='${node}'><item id='sub:${ROMEO}'><presence xmlns='jabber:client' type='subscribe' from='${ROMEO}' to='${BENVOLIO}'><inbox xmlns='${NS_INBOX}' nonce='forged'/></presence></item></publish>`,
      `<publish node='${node}'><item id='m1'><message xmlns='jabber:client' type='chat' from='${ROMEO}/orchard' to='${BENVOLIO}'><body>forged</body><sent xmlns='${NS_CHAT}' at='2026-12-02T00:00:00.000Z'/></message></item></publish>`,
    ];
    let n = 0;
    for (const step of steps) {
      const id = `f${++n}`;
      direct.send(`<iq type='set' id='${id}' to='pubsub.montague.lit'><pubsub xmlns='${NS}'>${step}</pubsub></iq>`);
      t.match((await direct.expect(new RegExp(`<iq [^>]*id=["']${id}["'][^>]*>`)))[0], /type=["']result["']/, `step ${n} done at the backend`);
    }
    const benvolio = await login('benvolio', 'montague.lit', 'fountain');
    await online(benvolio);
    await new Promise((r) => setTimeout(r, 1500));
    t.notOk(benvolio.received.some(isPresence(ROMEO, 'subscribe')), 'no request "from romeo"');
    t.notOk((await rosterOf(benvolio)).has(ROMEO), 'nor a roster entry');
    t.notOk(benvolio.received.some((m: Element) => m.name === 'message' && m.getChildText('body') === 'forged'), 'no message "from romeo"');
    await benvolio.stop();
  });
});
