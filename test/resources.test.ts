// Several resources of one user, logging in and out, on one and on two proxy instances: what other
// client stacks found in §3/§4 (issue 6). Each scenario is the stanza sequence that showed the defect.
import t from 'tap';
import type { Element } from 'ltx';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { startTestProxy, type RunningProxy } from './harness/proxy.js';
import { waitFor, xml } from './harness/xmpp.js';
import type { Backend } from './harness/common.js';
import { NS_CAPS, advertise } from './harness/pep.js';
import { PASSWORD, USERS, isPresence, isPush, NS_ROSTER, rosterOf, sessions, enrolAndPair, type Client } from './harness/roster.js';

const JULIET = 'juliet@capulet.lit';
const ROMEO = 'romeo@montague.lit';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));



/** Presence stanzas a client received from `from` (a full JID), in order, as 'available'/'unavailable'. */
function presenceLog(c: Client, from: string): string[] {
  return c.received.filter((s: Element) => s.name === 'presence' && s.attrs.from === from).map((s: Element) => (s.attrs.type as string | undefined) ?? 'available');
}

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`several resources on ${kind}`, async (t) => {
    const backend: Backend = kind === 'ejabberd' ? await startEjabberd({ users: USERS }) : await startProsody({ users: USERS });
    t.teardown(() => backend.stop());
    const proxy: RunningProxy = await startTestProxy(backend);
    t.teardown(() => proxy.stop());
    const other: RunningProxy = await startTestProxy(backend);
    t.teardown(() => other.stop());
    const s = sessions(t, PASSWORD, () => proxy);
    const { login, online } = s;
    await enrolAndPair(s, USERS);

    t.test('a roster remove reaches a resource that stayed online while another left', async (t) => {
      const a = await login('juliet', 'capulet.lit', 'A');
      const b = await login('juliet', 'capulet.lit', 'B');
      await online(a);
      await online(b);
      await a.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'nurse@capulet.lit', name: 'Nurse' }, xml('group', {}, 'Household')))));
      await waitFor(a, isPush('nurse@capulet.lit', { name: 'Nurse' }));
      await waitFor(b, isPush('nurse@capulet.lit', { name: 'Nurse' }));
      await a.stop();
      const c = await login('juliet', 'capulet.lit', 'C');
      t.ok((await rosterOf(c)).has('nurse@capulet.lit'), 'the new resource sees the item');
      await c.send(xml('presence'));
      await c.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'nurse@capulet.lit', subscription: 'remove' }))));
      await waitFor(c, isPush('nurse@capulet.lit', { subscription: 'remove' }));
      await waitFor(b, isPush('nurse@capulet.lit', { subscription: 'remove' }));
      t.pass('the resource that stayed online got the removal');
      t.notOk((await rosterOf(b)).has('nurse@capulet.lit'), 'and its roster no longer has the item');
      // the same for a resource on another proxy instance, and a removal from it
      const d = await login('juliet', 'capulet.lit', 'D', other);
      await online(d);
      await c.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'nurse@capulet.lit', name: 'Angelica' }))));
      await waitFor(d, isPush('nurse@capulet.lit', { name: 'Angelica' }));
      await c.stop();
      await d.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'nurse@capulet.lit', subscription: 'remove' }))));
      await waitFor(b, isPush('nurse@capulet.lit', { subscription: 'remove' }), 5000);
      t.pass('a removal made through the other instance reaches it too');
      await Promise.all([b.stop(), d.stop()]);
    });

    t.test('a roster node made at the first roster write, by one of two resources on two instances', async (t) => {
      // benvolio has logged in once, never written a roster: both resources log in without a roster node
      const a = await login('benvolio', 'montague.lit', 'A');
      const b = await login('benvolio', 'montague.lit', 'B', other);
      await Promise.all([online(a), online(b)]);
      t.same([...(await rosterOf(a)).keys()], [], 'an empty roster');
      await a.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'mercutio@verona.lit', name: 'Mercutio' }))));
      await waitFor(b, isPush('mercutio@verona.lit', { name: 'Mercutio' }));
      t.pass('the first write (which made the node) reaches the other instance');
      // b's login found no node either: its first write finds the node made meanwhile (a conflict), and writes
      await b.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'tybalt@capulet.lit', name: 'Tybalt' }))));
      await waitFor(a, isPush('tybalt@capulet.lit', { name: 'Tybalt' }));
      t.pass("and the other resource's first write reaches the first");
      const c = await login('benvolio', 'montague.lit', 'C');
      t.same([...(await rosterOf(c)).keys()].sort(), ['mercutio@verona.lit', 'tybalt@capulet.lit'], 'a later login reads both items (the node was made with our configuration, not auto-created with one item)');
      await Promise.all([a.stop(), b.stop(), c.stop()]);
    });

    t.test("a resource's presence reaches the user's other resources once, and only after it sent presence", async (t) => {
      const a = await login('juliet', 'capulet.lit', 'A');
      await online(a);
      const silent = await login('juliet', 'capulet.lit', 'silent');
      await rosterOf(silent); // bound and interested, but never available
      const b = await login('juliet', 'capulet.lit', 'B');
      await online(b, xml('status', {}, 'here'));
      await waitFor(a, isPresence(`${JULIET}/B`));
      await sleep(1500);
      t.same(presenceLog(a, `${JULIET}/B`), ['available'], 'exactly one presence from B');
      t.equal(a.received.find(isPresence(`${JULIET}/B`))?.getChildText('status'), 'here', 'and it is the one B sent');
      t.same(presenceLog(a, `${JULIET}/silent`), [], 'nothing from a resource that never sent presence');
      t.same(presenceLog(b, `${JULIET}/silent`), [], 'not even at initial presence');
      await silent.stop();
      await sleep(800);
      t.same(presenceLog(a, `${JULIET}/silent`), [], 'nor when it leaves');
      await b.stop();
      await waitFor(a, isPresence(`${JULIET}/B`, 'unavailable'));
      await sleep(800);
      t.same(presenceLog(a, `${JULIET}/B`), ['available', 'unavailable'], 'one unavailable when B leaves');
      await a.stop();
    });

    t.test('a resource that has gone is never shown available again (quick logins and logouts, two instances)', async (t) => {
      const watcher = await login('juliet', 'capulet.lit', 'watcher');
      await online(watcher);
      const romeo = await login('romeo', 'montague.lit', 'orchard');
      await online(romeo);
      const names: string[] = [];
      for (let i = 0; i < 6; i++) {
        const name = `quick${i}`;
        names.push(name);
        const c = await login('juliet', 'capulet.lit', name, i % 2 ? other : proxy);
        await online(c);
        if (i % 3 === 2) await c.send(xml('presence', { type: 'unavailable' }));
        await c.stop();
      }
      // two at once, one of them leaving while the other logs in
      const [x, y] = await Promise.all([login('juliet', 'capulet.lit', 'x', proxy), login('juliet', 'capulet.lit', 'y', other)]);
      names.push('x', 'y');
      await Promise.all([online(x), online(y)]);
      await Promise.all([x.stop(), login('juliet', 'capulet.lit', 'z', other).then(async (z) => { names.push('z'); await online(z); await y.stop(); await z.stop(); })]);
      // a resource leaves while a new one logs in and probes the node (it reads the leaving item)
      const late: Array<[string, Client]> = [];
      for (let i = 0; i < 4; i++) {
        const name = `leaving${i}`;
        names.push(name);
        const leaving = await login('juliet', 'capulet.lit', name, i % 2 ? other : proxy);
        await online(leaving);
        await waitFor(watcher, isPresence(`${JULIET}/${name}`));
        const arriving = await login('juliet', 'capulet.lit', `arriving${i}`, i % 2 ? proxy : other);
        await rosterOf(arriving);
        await Promise.all([leaving.stop(), arriving.send(xml('presence'))]);
        late.push([name, arriving]);
      }
      await sleep(1500);
      for (const [name, c] of late) {
        const log = presenceLog(c, `${JULIET}/${name}`);
        t.ok(log.length === 0 || log.at(-1) === 'unavailable', `a session that logged in as ${name} left does not keep it available (${log.join(',')})`);
      }
      await Promise.all(late.map(([, c]) => c.stop()));
      names.push(...late.map((_, i) => `arriving${i}`));
      await sleep(1500);
      const fresh = await login('juliet', 'capulet.lit', 'fresh', other);
      await online(fresh);
      const romeo2 = await login('romeo', 'montague.lit', 'mobile');
      await online(romeo2);
      await sleep(2000);
      for (const n of names) {
        const full = `${JULIET}/${n}`;
        for (const [who, c] of [['watcher', watcher], ['romeo', romeo]] as const) {
          const log = presenceLog(c, full);
          t.equal(log.at(-1), 'unavailable', `${who} last saw ${n} unavailable (${log.join(',')})`);
          t.notOk(log.some((v, i) => v === 'available' && log.slice(0, i).includes('unavailable')), `${who} never saw ${n} available again`);
        }
        t.same(presenceLog(fresh, full), [], `a later session of the user is not told ${n} exists`);
        t.same(presenceLog(romeo2, full), [], `a contact's later session is not told ${n} exists`);
      }
      await Promise.all([watcher.stop(), romeo.stop(), fresh.stop(), romeo2.stop()]);
    });

    t.test('directed presence (RFC 6121 §4.6) is delivered, from the bound JID, and ended at logout', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      const benvolio = await login('benvolio', 'montague.lit', 'street');
      await online(benvolio);
      await juliet.send(xml('presence', { to: 'benvolio@montague.lit', from: 'tybalt@capulet.lit/sword' }, xml('status', {}, 'just for you')));
      const got = await waitFor(benvolio, (s) => s.name === 'presence' && s.getChildText('status') === 'just for you');
      t.equal(got.attrs.from, `${JULIET}/balcony`, 'from the bound JID, whatever the client wrote');
      t.notOk(got.attrs.type, 'available');
      await juliet.send(xml('presence', { to: 'benvolio@montague.lit/street', type: 'unavailable' }, xml('status', {}, 'bye for now')));
      const bye = await waitFor(benvolio, (s) => s.name === 'presence' && s.getChildText('status') === 'bye for now');
      t.equal(bye.attrs.type, 'unavailable', 'a directed unavailable');
      // directed again, then the session ends without a word: the target is told
      await juliet.send(xml('presence', { to: 'benvolio@montague.lit' }, xml('status', {}, 'again')));
      await waitFor(benvolio, (s) => s.name === 'presence' && s.getChildText('status') === 'again');
      benvolio.received.length = 0;
      await juliet.stop();
      await waitFor(benvolio, isPresence(`${JULIET}/balcony`, 'unavailable'));
      await sleep(800);
      t.same(presenceLog(benvolio, `${JULIET}/balcony`), ['unavailable'], 'one unavailable at logout');
      await benvolio.stop();
    });

    t.test("the user's own PEP nodes notify its resources that advertise +notify (XEP-0163 §4)", async (t) => {
      const features = ['urn:xmpp:avatar:metadata+notify', 'urn:xep207-test:custom+notify', 'urn:xmpp:avatar:metadata', NS_CAPS];
      const a = await login('juliet', 'capulet.lit', 'pepA');
      const capsA = advertise(a, features);
      await online(a, capsA);
      const b = await login('juliet', 'capulet.lit', 'pepB', other);
      const capsB = advertise(b, features);
      await online(b, capsB);
      await sleep(1500); // the backend asks each client for its caps (disco#info) and caches them
      const meta = xml('metadata', { xmlns: 'urn:xmpp:avatar:metadata' }, xml('info', { id: 'abc123', bytes: '10', type: 'image/png' }));
      await a.iqCaller.request(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('publish', { node: 'urn:xmpp:avatar:metadata' }, xml('item', { id: 'abc123' }, meta)))));
      const isEvent = (node: string) => (s: Element) => s.name === 'message' && s.getChild('event', 'http://jabber.org/protocol/pubsub#event')?.getChild('items')?.attrs.node === node;
      const ea = await waitFor(a, isEvent('urn:xmpp:avatar:metadata'));
      t.equal(ea.attrs.from, JULIET, 'the publisher gets its own event, from its bare JID');
      await waitFor(b, isEvent('urn:xmpp:avatar:metadata'));
      t.pass('the other resource (another proxy instance) gets it');
      await b.iqCaller.request(xml('iq', { type: 'set' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('publish', { node: 'urn:xep207-test:custom' }, xml('item', { id: 'one' }, xml('thing', { xmlns: 'urn:xep207-test:custom' }, 'hello'))))));
      await waitFor(a, isEvent('urn:xep207-test:custom'));
      await waitFor(b, isEvent('urn:xep207-test:custom'));
      t.pass('a custom node too');
      await Promise.all([a.stop(), b.stop()]);
    });

    t.test('a contact that removes the user goes unavailable before the roster push that ends the subscription', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      const romeo = await login('romeo', 'montague.lit', 'orchard');
      await online(romeo);
      await online(juliet);
      await waitFor(juliet, isPresence(`${ROMEO}/orchard`));
      juliet.received.length = 0;
      await romeo.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: JULIET, subscription: 'remove' }))));
      await waitFor(juliet, isPush(ROMEO, { subscription: 'none' }));
      await waitFor(juliet, isPresence(ROMEO, 'unsubscribed'));
      await sleep(500);
      const seq = juliet.received.map((s: Element) => (s.name === 'iq' ? `push:${s.getChild('query')?.getChild('item')?.attrs.subscription}` : `${s.name}:${s.attrs.from}:${s.attrs.type ?? 'available'}`));
      const unavailable = seq.indexOf(`presence:${ROMEO}/orchard:unavailable`);
      t.not(unavailable, -1, `romeo's resource went unavailable (${seq.join(' ')})`);
      t.ok(unavailable < seq.indexOf('push:none'), 'before the push that ends the subscription');
      t.ok(unavailable < seq.indexOf(`presence:${ROMEO}:unsubscribed`), 'and before the unsubscribed presence');
      await Promise.all([juliet.stop(), romeo.stop()]);
    });
  });
}
