// Issue 8, PEP for contacts on both backends with @xmpp/client, two proxy instances: an avatar
// (XEP-0084 metadata + data), a nickname (XEP-0172) and an OMEMO device list (XEP-0384) published
// with access model `presence` are readable and notified (per +notify) to a mutual contact, on
// another proxy instance too; not to a stranger, who also gets nothing with raw pubsub requests; last
// items at login, also for a contact approved while offline; nothing after `unsubscribed`.
import t from 'tap';
import type { Element } from 'ltx';
import { twoProxies } from './harness/two-proxies.js';
import { RawClient, waitFor, xml } from './harness/xmpp.js';
import { PASSWORD, isPresence, isPush, sessions, enrolAndPair, subscribe, type Client } from './harness/roster.js';
import { NS_CAPS, NS_PUBSUB, advertise, eventItem, isEvent, publishIq, readItems } from './harness/pep.js';

const USERS: Array<[string, string, string]> = [
  ['juliet', 'capulet.lit', PASSWORD],
  ['romeo', 'montague.lit', PASSWORD],
  ['benvolio', 'montague.lit', PASSWORD], // a stranger to juliet
  ['nurse', 'capulet.lit', PASSWORD], // approved while offline
  ['tybalt', 'capulet.lit', PASSWORD], // has PEP nodes from before the proxy (not enrolled)
  ['mercutio', 'montague.lit', PASSWORD], // has only a node no client commonly publishes (not enrolled)
];
const NOT_ENROLLED = new Set(['tybalt', 'mercutio']);
const JULIET = 'juliet@capulet.lit';
const ROMEO = 'romeo@montague.lit';
const NURSE = 'nurse@capulet.lit';

const META = 'urn:xmpp:avatar:metadata';
const DATA = 'urn:xmpp:avatar:data';
const NICK = 'http://jabber.org/protocol/nick';
const DEVICES = 'eu.siacs.conversations.axolotl.devicelist';
const OPEN = 'urn:xep207-test:open';
const AVATAR_ID = '2f2e9d3c1a0b6a7e8a6c5d4b3a291807f6e5d4c3';
const ALL_NOTIFY = [META, NICK, DEVICES, OPEN].map((n) => `${n}+notify`);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const events = (c: Client, node: string) => c.received.filter(isEvent(node, JULIET));

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`PEP for contacts on ${kind}`, async (t) => {
    const { backend, proxy, other } = await twoProxies(t, kind, USERS);
    const s = sessions(t, PASSWORD, () => proxy);
    const { login, online } = s;
    await enrolAndPair(s, USERS.filter(([u]) => !NOT_ENROLLED.has(u)), other); // juliet and romeo share presence both ways

    /** a session with caps asking `notify`, online */
    const withCaps = async (user: string, domain: string, resource: string, notify: string[], px = proxy) => {
      const c = await login(user, domain, resource, px);
      await online(c, advertise(c, [...notify, NS_CAPS]));
      return c;
    };

    t.test('published with access model presence: read and notified to the contact per +notify, on another instance; not to a stranger', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      const romeo = await withCaps('romeo', 'montague.lit', 'orchard', ALL_NOTIFY, other);
      const nickless = await withCaps('romeo', 'montague.lit', 'pager', [`${META}+notify`]);
      const benvolio = await withCaps('benvolio', 'montague.lit', 'street', ALL_NOTIFY);
      await sleep(1000); // the proxies ask each client's caps
      const publish = (iq: Element) => juliet.iqCaller.request(iq);
      await publish(publishIq(DATA, AVATAR_ID, xml('data', { xmlns: DATA }, 'iVBORw0KGgo='), 'presence'));
      await publish(publishIq(META, AVATAR_ID, xml('metadata', { xmlns: META }, xml('info', { id: AVATAR_ID, bytes: '8', type: 'image/png' })), 'presence'));
      await publish(publishIq(NICK, 'current', xml('nick', { xmlns: NICK }, 'Jules'))); // no publish-options: presence by default
      await publish(publishIq(DEVICES, 'current', xml('list', { xmlns: 'eu.siacs.conversations.axolotl' }, xml('device', { id: '31415' })), 'presence'));
      await publish(publishIq(OPEN, 'one', xml('thing', { xmlns: OPEN }, 'for everybody'), 'open'));

      const meta = await waitFor(romeo, isEvent(META, JULIET));
      t.equal(eventItem(meta)?.getChild('metadata', META)?.getChild('info')?.attrs.id, AVATAR_ID, 'avatar metadata notified, from the bare JID');
      t.equal(eventItem(await waitFor(romeo, isEvent(NICK, JULIET)))?.getChildText('nick', NICK), 'Jules', 'nickname notified');
      t.equal(eventItem(await waitFor(romeo, isEvent(DEVICES, JULIET)))?.getChild('list')?.getChild('device')?.attrs.id, '31415', 'device list notified');
      await waitFor(romeo, isEvent(OPEN, JULIET));
      t.pass('an open node notifies the contact too');
      await waitFor(nickless, isEvent(META, JULIET));
      await sleep(1000);
      t.same(events(romeo, DATA), [], 'no notification of a node without +notify (avatar data)');
      t.same(events(nickless, NICK), [], 'a session without nick+notify gets no nick');
      t.same(events(nickless, DEVICES), [], 'nor a device list');
      t.equal(events(romeo, META).length, 1, 'each notification once');
      t.same(benvolio.received.filter((s: Element) => s.name === 'message' && s.attrs.from === JULIET).map((s: Element) => s.toString()), [], 'the stranger is notified of nothing');

      // reads: the contact by id (XEP-0084 §4.2), the stranger nothing
      const data = await readItems(romeo, JULIET, DATA, AVATAR_ID);
      t.equal(typeof data === 'string' ? data : data[0]?.getChildText('data', DATA), 'iVBORw0KGgo=', 'the contact reads the avatar data by id');
      const nick = await readItems(romeo, JULIET, NICK);
      t.equal(typeof nick === 'string' ? nick : nick[0]?.getChildText('nick', NICK), 'Jules', 'and the nickname');
      for (const node of [DATA, META, NICK, DEVICES]) {
        const r = await readItems(benvolio, JULIET, node);
        t.type(r, 'string', `the stranger cannot read ${node} (${typeof r === 'string' ? r : r.length + ' items'})`);
      }
      const open = await readItems(benvolio, JULIET, OPEN);
      t.equal(typeof open === 'string' ? open : open.length, 1, 'an open node stays open');
      // the owner's configuration reads as the client set it
      const conf = await juliet.iqCaller.request(xml('iq', { type: 'get' }, xml('pubsub', { xmlns: `${NS_PUBSUB}#owner` }, xml('configure', { node: NICK }))));
      const access = conf.getChild('pubsub')?.getChild('configure')?.getChild('x')?.getChildren('field').find((f: Element) => f.attrs.var === 'pubsub#access_model')?.getChildText('value');
      t.equal(access, 'presence', 'the owner sees access model presence');
      // a retraction reaches the contact
      await publish(publishIq(OPEN, 'two', xml('thing', { xmlns: OPEN }, 'second')));
      await waitFor(romeo, (s) => isEvent(OPEN, JULIET)(s) && eventItem(s)?.attrs.id === 'two');
      await juliet.iqCaller.request(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('retract', { node: OPEN, notify: 'true' }, xml('item', { id: 'two' })))));
      await waitFor(romeo, (s) => isEvent(OPEN, JULIET)(s) && s.getChild('event')?.getChild('items')?.getChild('retract')?.attrs.id === 'two');
      t.pass('a retraction is notified');
      await Promise.all([juliet.stop(), romeo.stop(), nickless.stop(), benvolio.stop()]);
    });

    t.test('a raw client bypassing the mapping gets nothing of a stranger\'s nodes', async (t) => {
      const benvolio = await login('benvolio', 'montague.lit', 'raw');
      const ask = (child: Element, type: 'get' | 'set' = 'get') =>
        benvolio.iqCaller.request(xml('iq', { type, to: JULIET }, child)).then(() => 'result', (e: { condition?: string }) => e.condition ?? 'error');
      for (const node of [META, NICK, DEVICES]) {
        t.not(await ask(xml('pubsub', { xmlns: NS_PUBSUB }, xml('subscribe', { node, jid: 'benvolio@montague.lit' })), 'set'), 'result', `subscribe to ${node} refused`);
        t.not(await ask(xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node }))), 'result', `items of ${node} refused`);
        t.not(await ask(xml('pubsub', { xmlns: `${NS_PUBSUB}#owner` }, xml('affiliations', { node }))), 'result', `affiliations of ${node} refused`);
        t.not(await ask(xml('pubsub', { xmlns: `${NS_PUBSUB}#owner` }, xml('affiliations', { node }, xml('affiliation', { jid: 'benvolio@montague.lit', affiliation: 'member' }))), 'set'), 'result', `making itself a member of ${node} refused`);
      }
      t.not(await ask(xml('pubsub', { xmlns: NS_PUBSUB }, xml('items', { node: 'presence' }))), 'result', "the proxy's presence node refused");
      await benvolio.stop();
      // straight to the backend, no proxy at all: the backend itself refuses
      const direct = await RawClient.login(backend.port, 'montague.lit', 'benvolio', PASSWORD, 'direct');
      t.teardown(() => direct.close());
      let n = 0;
      for (const node of [DATA, META, NICK, DEVICES]) {
        const id = `d${++n}`;
        direct.send(`<iq type='get' id='${id}' to='${JULIET}'><pubsub xmlns='${NS_PUBSUB}'><items node='${node}'/></pubsub></iq>`);
        const answer = await direct.expect(new RegExp(`<iq [^>]*id=["']${id}["'][^>]*>.*?</iq>`, 's'));
        t.match(answer[0], /type=["']error["']/, `${node} read directly at the backend: error`);
        t.notMatch(answer[0], /<item /, 'no item');
      }
      direct.send(`<iq type='set' id='s1' to='${JULIET}'><pubsub xmlns='${NS_PUBSUB}'><subscribe node='${META}' jid='benvolio@montague.lit'/></pubsub></iq>`);
      t.match((await direct.expect(/<iq [^>]*id=["']s1["'][^>]*>.*?<\/iq>/s))[0], /type=["']error["']/, 'a direct subscribe: error');
    });

    t.test('last items at initial presence, and for a contact approved while offline at its next login', async (t) => {
      const romeo = await withCaps('romeo', 'montague.lit', 'later', [`${META}+notify`, `${NICK}+notify`]);
      t.equal(eventItem(await waitFor(romeo, isEvent(META, JULIET)))?.attrs.id, AVATAR_ID, 'the last avatar metadata at login');
      await waitFor(romeo, isEvent(NICK, JULIET));
      await sleep(800);
      t.same(events(romeo, DEVICES), [], 'nothing of a node without +notify');
      t.equal(events(romeo, META).length, 1, 'once');
      await romeo.stop();
      // the user's own nodes too
      const own = await withCaps('juliet', 'capulet.lit', 'own', [`${NICK}+notify`], other);
      await waitFor(own, isEvent(NICK, JULIET));
      await sleep(800);
      t.equal(events(own, NICK).length, 1, "the user's own last nickname at login, once");
      t.same(events(own, META), [], 'nothing of its own nodes without +notify');
      await own.stop();
      // the nurse asks, goes away; juliet approves meanwhile
      const nurse = await login('nurse', 'capulet.lit', 'chamber');
      await online(nurse);
      await nurse.send(xml('presence', { to: JULIET, type: 'subscribe' }));
      await waitFor(nurse, isPush(JULIET, { ask: 'subscribe' }));
      await nurse.stop();
      const juliet = await login('juliet', 'capulet.lit', 'balcony', other);
      await online(juliet);
      await waitFor(juliet, isPresence(NURSE, 'subscribe'));
      await juliet.send(xml('presence', { to: NURSE, type: 'subscribed' }));
      await waitFor(juliet, isPush(NURSE, { subscription: 'from' }));
      const back = await withCaps('nurse', 'capulet.lit', 'chamber', [`${NICK}+notify`]);
      t.equal(eventItem(await waitFor(back, isEvent(NICK, JULIET)))?.getChildText('nick', NICK), 'Jules', 'the nickname at the next login');
      const data = await readItems(back, JULIET, DATA, AVATAR_ID);
      t.type(data, Array, 'and the avatar is readable');
      await Promise.all([juliet.stop(), back.stop()]);
    });

    t.test('owner-only stays owner-only; another access model on a presence node is a precondition error; reconfiguring', async (t) => {
      const BOOKMARKS = 'urn:xmpp:bookmarks:1';
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      const quiet = await withCaps('juliet', 'capulet.lit', 'quiet', [], other); // no +notify at all
      await online(juliet);
      const romeo = await login('romeo', 'montague.lit', 'orchard', other);
      await online(romeo);
      await juliet.iqCaller.request(publishIq(BOOKMARKS, 'room@conference.capulet.lit', xml('conference', { xmlns: BOOKMARKS, name: 'Ball' }), 'whitelist'));
      t.type(await readItems(romeo, JULIET, BOOKMARKS), 'string', 'a whitelist node (bookmarks) is not readable by a contact');
      const refused = await juliet.iqCaller.request(publishIq(NICK, 'current', xml('nick', { xmlns: NICK }, 'Jules'), 'whitelist')).then(
        () => undefined,
        (e: { condition?: string; element?: Element }) => e,
      );
      t.equal(refused?.condition, 'conflict', 'publish-options whitelist on a presence node: conflict');
      t.ok(refused?.element?.getChild('precondition-not-met', 'http://jabber.org/protocol/pubsub#errors'), 'with precondition-not-met');
      const configure = (access: string) =>
        juliet.iqCaller.request(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: `${NS_PUBSUB}#owner` }, xml('configure', { node: NICK }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#node_config')), xml('field', { var: 'pubsub#access_model' }, xml('value', {}, access)))))));
      await configure('whitelist');
      t.type(await readItems(romeo, JULIET, NICK), 'string', 'reconfigured whitelist: the contact can no longer read it');
      await configure('presence');
      const back = await readItems(romeo, JULIET, NICK);
      t.equal(typeof back === 'string' ? back : back.length, 1, 'reconfigured presence: readable again');
      await sleep(500);
      t.same(quiet.received.filter((s: Element) => s.name === 'message' && s.getChild('event', 'http://jabber.org/protocol/pubsub#event')).map((s: Element) => s.toString().slice(0, 120)), [], "the user's own resource without +notify gets no notification of its own nodes");
      await Promise.all([juliet.stop(), quiet.stop(), romeo.stop()]);
    });

    t.test('after unsubscribed: neither readable nor notified', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      const romeo = await withCaps('romeo', 'montague.lit', 'orchard', ALL_NOTIFY, other);
      await waitFor(romeo, isEvent(NICK, JULIET));
      await juliet.send(xml('presence', { to: ROMEO, type: 'unsubscribed' }));
      await waitFor(romeo, isPush(JULIET, { subscription: 'from' }));
      await sleep(500);
      romeo.received.length = 0;
      for (const node of [DATA, META, NICK, DEVICES]) {
        const r = await readItems(romeo, JULIET, node);
        t.type(r, 'string', `${node} no longer readable (${typeof r === 'string' ? r : r.length + ' items'})`);
      }
      await juliet.iqCaller.request(publishIq(NICK, 'current', xml('nick', { xmlns: NICK }, 'Capulet')));
      await sleep(1000);
      t.same(events(romeo, NICK), [], 'no notification');
      await Promise.all([juliet.stop(), romeo.stop()]);
    });

    t.test('a node made with <create/> and configured presence; its deletion; a caps change; an approval while online', async (t) => {
      const CUSTOM = 'urn:xep207-test:mood';
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      const benvolio = await withCaps('benvolio', 'montague.lit', 'street', [`${NICK}+notify`, `${CUSTOM}+notify`]);
      const form = (access: string) => xml('x', { xmlns: 'jabber:x:data', type: 'submit' }, xml('field', { var: 'FORM_TYPE', type: 'hidden' }, xml('value', {}, 'http://jabber.org/protocol/pubsub#node_config')), xml('field', { var: 'pubsub#access_model' }, xml('value', {}, access)));
      await juliet.iqCaller.request(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: NS_PUBSUB }, xml('create', { node: CUSTOM }), xml('configure', {}, form('presence')))));
      await juliet.iqCaller.request(publishIq(CUSTOM, 'now', xml('mood', { xmlns: CUSTOM }, 'hopeful')));
      t.type(await readItems(benvolio, JULIET, CUSTOM), 'string', 'a node created presence is not readable by a stranger');
      // benvolio asks, juliet approves while benvolio is online: the last items come at once
      await benvolio.send(xml('presence', { to: JULIET, type: 'subscribe' }));
      await waitFor(juliet, isPresence('benvolio@montague.lit', 'subscribe'));
      await juliet.send(xml('presence', { to: 'benvolio@montague.lit', type: 'subscribed' }));
      t.equal(eventItem(await waitFor(benvolio, isEvent(CUSTOM, JULIET)))?.getChildText('mood', CUSTOM), 'hopeful', 'the last item of the created node, at approval');
      await waitFor(benvolio, isEvent(NICK, JULIET));
      t.pass('and of the nickname');
      t.type(await readItems(benvolio, JULIET, CUSTOM), Array, 'now readable');
      // a caps change that adds an interest brings that node's last item
      t.same(events(benvolio, META), [], 'no metadata before the caps ask for it');
      await benvolio.send(xml('presence', {}, advertise(benvolio, [`${NICK}+notify`, `${CUSTOM}+notify`, `${META}+notify`, NS_CAPS])));
      t.equal(eventItem(await waitFor(benvolio, isEvent(META, JULIET)))?.attrs.id, AVATAR_ID, 'the metadata after the caps change');
      // the owner deletes the node: the contact hears of it
      await juliet.iqCaller.request(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: `${NS_PUBSUB}#owner` }, xml('delete', { node: CUSTOM }))));
      await waitFor(benvolio, (s) => s.name === 'message' && s.attrs.from === JULIET && s.getChild('event')?.getChild('delete')?.attrs.node === CUSTOM);
      t.pass('the deletion is notified');
      // a node of the same name made again starts afresh, readable by the contacts again
      await juliet.iqCaller.request(publishIq(CUSTOM, 'again', xml('mood', { xmlns: CUSTOM }, 'content')));
      const again = await readItems(benvolio, JULIET, CUSTOM);
      t.equal(typeof again === 'string' ? again : again[0]?.getChildText('mood', CUSTOM), 'content', 'a node made again after its deletion is readable by the contact');
      await Promise.all([juliet.stop(), benvolio.stop()]);
    });

    t.test(kind === 'ejabberd' ? "nodes made before the proxy: adopted before the first grant through it (named by the user's affiliations)" : 'nodes made before the proxy: adopted before the first grant through it when the user has a well-known one', async (t) => {
      const BEFORE = 'urn:xep207-test:before';
      /** publish straight at the backend, as the user's client did before the proxy was in front of it */
      const nativePublish = async (user: string, domain: string, items: Array<[string, string]>) => {
        const direct = await RawClient.login(backend.port, domain, user, PASSWORD, 'native');
        let n = 0;
        for (const [node, payload] of items) {
          const id = `n${++n}`;
          direct.send(`<iq type='set' id='${id}'><pubsub xmlns='${NS_PUBSUB}'><publish node='${node}'><item id='current'>${payload}</item></publish></pubsub></iq>`);
          t.match((await direct.expect(new RegExp(`<iq [^>]*id=["']${id}["'][^>]*>`)))[0], /type=["']result["']/, `${user}: ${node} published natively`);
        }
        direct.close();
      };
      await nativePublish('tybalt', 'capulet.lit', [
        [NICK, `<nick xmlns='${NICK}'>Prince of Cats</nick>`],
        [BEFORE, `<thing xmlns='${BEFORE}'>old</thing>`],
      ]);
      await nativePublish('mercutio', 'montague.lit', [[BEFORE, `<thing xmlns='${BEFORE}'>queen mab</thing>`]]);
      const romeo = await login('romeo', 'montague.lit', 'orchard');
      await online(romeo);
      for (const [user, domain] of [['tybalt', 'capulet.lit'], ['mercutio', 'montague.lit']] as const) {
        const c = await login(user, domain, 'first'); // the first login through the proxy: its nodes are made
        await online(c);
        await sleep(1000); // the PEP reconcile runs in the background
        await subscribe(romeo, c); // romeo may now see the user's presence, and its presence nodes
        await c.stop();
      }
      const nick = await readItems(romeo, 'tybalt@capulet.lit', NICK);
      t.equal(typeof nick === 'string' ? nick : nick[0]?.getChildText('nick', NICK), 'Prince of Cats', 'a nickname published before the proxy: readable by the contact');
      const before = await readItems(romeo, 'tybalt@capulet.lit', BEFORE);
      t.equal(typeof before === 'string' ? before : before.length, 1, 'and every other node of that user, found by the listing');
      if (kind === 'ejabberd') {
        // the user's own affiliations name every node it owns, well-known or not
        const lone = await readItems(romeo, 'mercutio@montague.lit', BEFORE);
        t.equal(typeof lone === 'string' ? lone : lone[0]?.getChildText('thing', BEFORE), 'queen mab', 'a lone unknown node: found by the affiliations, readable by the contact');
        await romeo.stop();
        return;
      }
      // the documented limit elsewhere: a user with none of the well-known nodes is not listed; the
      // node is adopted when its owner publishes to it again
      t.type(await readItems(romeo, 'mercutio@montague.lit', BEFORE), 'string', 'a lone unknown node stays owner-only');
      const mercutio = await login('mercutio', 'montague.lit', 'later');
      await online(mercutio);
      await mercutio.iqCaller.request(publishIq(BEFORE, 'current', xml('thing', { xmlns: BEFORE }, 'again')));
      const after = await readItems(romeo, 'mercutio@montague.lit', BEFORE);
      t.equal(typeof after === 'string' ? after : after[0]?.getChildText('thing', BEFORE), 'again', 'until its owner publishes to it through the proxy');
      await Promise.all([romeo.stop(), mercutio.stop()]);
    });
  });
}
