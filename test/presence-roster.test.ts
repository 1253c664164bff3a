// Issue 3, the whole story on both backends with @xmpp/client through the proxy: contacts, requests
// (also to an offline owner), approval, mutual subscription, presence with show/status, two resources,
// roster names and groups across re-login, a proxy restart and a second proxy instance, deny, revoke,
// remove, a dropped client; and the backend's captured stream shows it never saw a legacy stanza.
import t from 'tap';
import type { Element } from 'ltx';
import { startEjabberd } from './harness/ejabberd.js';
import { startProsody } from './harness/prosody.js';
import { startTestProxy, type RunningProxy } from './harness/proxy.js';
import { startCapture, upstreamElements } from './harness/capture.js';
import { connect, waitFor, xml } from './harness/xmpp.js';
import type { Backend } from './harness/common.js';
import { PASSWORD, USERS, isPresence, isPush, NS_ROSTER, rosterOf, sessions, type Client } from './harness/roster.js';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { CERTS, ROOT, freePort, waitForPort } from './harness/common.js';


/** registered, but logs in through the proxy only during the test that needs a newcomer */
const NEWCOMER: [string, string, string] = ['paris', 'capulet.lit', PASSWORD];



/** Forget what a client received so far (waitFor then only sees what comes next). */
function clear(...cs: Client[]): void {
  for (const c of cs) c.received.length = 0;
}

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`presence, subscriptions and roster on ${kind}`, async (t) => {
    const backend: Backend = kind === 'ejabberd' ? await startEjabberd({ users: [...USERS, NEWCOMER] }) : await startProsody({ users: [...USERS, NEWCOMER] });
    t.teardown(() => backend.stop());
    // the backend leg in plaintext through a recorder: point 6 is read off what the backend received
    const cap = await startCapture(backend.host, backend.port);
    t.teardown(() => cap.stop());
    let proxy: RunningProxy = await startTestProxy({ host: '127.0.0.1', port: cap.port }, { upstreamTls: 'off' });
    t.teardown(() => proxy.stop());
    const { login, online } = sessions(t, PASSWORD, () => proxy);

    // everybody logs in once, so that their nodes exist (see README: the first login enrols a user)
    for (const [u, d] of USERS) await (await login(u, d, 'first')).stop();

    t.test('add a contact: roster set with name and groups, push, roster get', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await rosterOf(juliet);
      clear(juliet);
      await juliet.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'romeo@montague.lit', name: 'Romeo' }, xml('group', {}, 'Montagues'), xml('group', {}, 'Lovers')))));
      const push = await waitFor(juliet, isPush('romeo@montague.lit', { name: 'Romeo', subscription: 'none' }));
      t.same(push.getChild('query')!.getChild('item')!.getChildren('group').map((g: Element) => g.getText()).sort(), ['Lovers', 'Montagues']);
      const roster = await rosterOf(juliet);
      t.equal(roster.get('romeo@montague.lit')?.attrs.name, 'Romeo');
      t.notOk(roster.get('romeo@montague.lit')?.attrs.ask, 'no ask yet');
      await juliet.stop();
    });

    t.test('a request to an offline owner waits for its next login, then approval', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet, xml('show', {}, 'chat'), xml('status', {}, 'Waiting'));
      clear(juliet);
      await juliet.send(xml('presence', { to: 'romeo@montague.lit', type: 'subscribe' }, xml('status', {}, 'Let me see you')));
      await waitFor(juliet, isPush('romeo@montague.lit', { ask: 'subscribe', subscription: 'none', name: 'Romeo' }));
      // Romeo comes online later
      const romeo = await login('romeo', 'montague.lit', 'orchard');
      await online(romeo);
      const req = await waitFor(romeo, isPresence('juliet@capulet.lit', 'subscribe'));
      t.equal(req.getChildText('status'), 'Let me see you', 'with the payload of the request');
      const rr = await rosterOf(romeo);
      t.notOk(rr.has('juliet@capulet.lit'), 'a pending request is not a roster item');
      // not answered: delivered again at the next login
      await romeo.stop();
      const romeo2 = await login('romeo', 'montague.lit', 'orchard');
      await online(romeo2);
      await waitFor(romeo2, isPresence('juliet@capulet.lit', 'subscribe'));
      t.pass('redelivered at the next login');
      clear(juliet, romeo2);
      await romeo2.send(xml('presence', { to: 'juliet@capulet.lit', type: 'subscribed' }));
      await waitFor(romeo2, isPush('juliet@capulet.lit', { subscription: 'from' }));
      await waitFor(juliet, isPush('romeo@montague.lit', { subscription: 'to', ask: undefined }));
      await waitFor(juliet, isPresence('romeo@montague.lit', 'subscribed'));
      const p = await waitFor(juliet, isPresence('romeo@montague.lit/orchard'));
      t.ok(p, "Juliet gets Romeo's current presence at approval");
      // and Romeo does not get Juliet's (he has not asked)
      await juliet.send(xml('presence', {}, xml('status', {}, 'Seen?')));
      await new Promise((r) => setTimeout(r, 500));
      t.notOk(romeo2.received.some(isPresence('juliet@capulet.lit/balcony')), 'no presence without a subscription');
      await Promise.all([juliet.stop(), romeo2.stop()]);
    });

    t.test('mutual subscription; presence changes with show and status; two resources', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      const romeo = await login('romeo', 'montague.lit', 'orchard');
      await online(romeo);
      await online(juliet, xml('show', {}, 'away'), xml('status', {}, 'Moping'));
      clear(juliet, romeo);
      await romeo.send(xml('presence', { to: 'juliet@capulet.lit', type: 'subscribe' }));
      await waitFor(juliet, isPresence('romeo@montague.lit', 'subscribe'));
      await juliet.send(xml('presence', { to: 'romeo@montague.lit', type: 'subscribed' }));
      await waitFor(juliet, isPush('romeo@montague.lit', { subscription: 'both', name: 'Romeo' }));
      await waitFor(romeo, isPush('juliet@capulet.lit', { subscription: 'both' }));
      const seen = await waitFor(romeo, isPresence('juliet@capulet.lit/balcony'));
      t.equal(seen.getChildText('show'), 'away');
      t.equal(seen.getChildText('status'), 'Moping');
      clear(romeo);
      await juliet.send(xml('presence', {}, xml('show', {}, 'dnd'), xml('status', {}, 'Parting is such sweet sorrow'), xml('priority', {}, '5')));
      const changed = await waitFor(romeo, (s) => isPresence('juliet@capulet.lit/balcony')(s) && s.getChildText('show') === 'dnd');
      t.equal(changed.getChildText('status'), 'Parting is such sweet sorrow');
      t.equal(changed.getChildText('priority'), '5', 'priority carried');
      // a second resource
      const garden = await login('juliet', 'capulet.lit', 'garden');
      await online(garden, xml('status', {}, 'In the garden'));
      const g = await waitFor(romeo, isPresence('juliet@capulet.lit/garden'));
      t.equal(g.getChildText('status'), 'In the garden');
      await waitFor(garden, isPresence('juliet@capulet.lit/balcony'));
      await waitFor(garden, isPresence('romeo@montague.lit/orchard'));
      t.pass("the new resource sees the other resource and the contact's presence");
      await waitFor(juliet, isPresence('juliet@capulet.lit/garden'));
      t.pass('the other resource sees the new one');
      clear(romeo);
      await garden.send(xml('presence', { type: 'unavailable' }, xml('status', {}, 'Gone in')));
      const gone = await waitFor(romeo, isPresence('juliet@capulet.lit/garden', 'unavailable'));
      t.equal(gone.getChildText('status'), 'Gone in', 'unavailable with its status');
      await new Promise((r) => setTimeout(r, 300));
      t.notOk(romeo.received.some(isPresence('juliet@capulet.lit/balcony', 'unavailable')), 'the other resource stays available');
      await Promise.all([juliet.stop(), romeo.stop(), garden.stop()]);
    });

    t.test('a dropped client goes unavailable for its contacts', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      const romeo = await login('romeo', 'montague.lit', 'orchard');
      await online(romeo);
      await online(juliet);
      await waitFor(romeo, isPresence('juliet@capulet.lit/balcony'));
      clear(romeo);
      juliet.socket.socket.destroy(); // the TLS socket under @xmpp/client's wrapper
      await waitFor(romeo, isPresence('juliet@capulet.lit/balcony', 'unavailable'));
      t.pass('unavailable after the socket died');
      const back = await login('juliet', 'capulet.lit', 'balcony');
      await online(back);
      await waitFor(romeo, isPresence('juliet@capulet.lit/balcony'));
      clear(romeo);
      await back.stop(); // a clean close without unavailable
      await waitFor(romeo, isPresence('juliet@capulet.lit/balcony', 'unavailable'));
      t.pass('and after a normal close');
      await romeo.stop();
    });

    t.test('roster survives re-login, a proxy restart, and reaches resources on another proxy instance', async (t) => {
      await proxy.stop();
      proxy = await startTestProxy({ host: '127.0.0.1', port: cap.port }, { upstreamTls: 'off' });
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      const r = await rosterOf(juliet);
      const romeo = r.get('romeo@montague.lit');
      t.equal(romeo?.attrs.subscription, 'both');
      t.equal(romeo?.attrs.name, 'Romeo');
      t.same(romeo?.getChildren('group').map((g: Element) => g.getText()).sort(), ['Lovers', 'Montagues']);
      const other = await startTestProxy({ host: '127.0.0.1', port: cap.port }, { upstreamTls: 'off' });
      t.teardown(() => other.stop());
      const garden = await login('juliet', 'capulet.lit', 'garden', other);
      await rosterOf(garden);
      clear(garden);
      await juliet.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'romeo@montague.lit', name: 'My Romeo' }, xml('group', {}, 'Lovers')))));
      const push = await waitFor(garden, isPush('romeo@montague.lit', { name: 'My Romeo', subscription: 'both' }));
      t.same(push.getChild('query')!.getChild('item')!.getChildren('group').map((g: Element) => g.getText()), ['Lovers'], 'pushed through the other instance');
      await Promise.all([juliet.stop(), garden.stop()]);
    });

    t.test('a proxy instance dies: its resources do not stay online', async (t) => {
      // proxy A in its own process, killed with SIGKILL: no onClose hook runs, nothing is unpublished
      const port = await freePort();
      const a = spawn(process.execPath, [join(ROOT, 'bin', 'xep207-proxy'), '--listen', `127.0.0.1:${port}`, '--upstream', `tcp://127.0.0.1:${cap.port}`, '--upstream-tls', 'off', '--tls-cert', join(CERTS, 'cert.pem'), '--tls-key', join(CERTS, 'key.pem'), '--log-level', 'warn'], { stdio: 'ignore' });
      t.teardown(() => a.kill('SIGKILL'));
      await waitForPort(port, 10_000);
      const romeo = await login('romeo', 'montague.lit', 'orchard');
      await online(romeo);
      const doomed = (await connect({ port, domain: 'capulet.lit', username: 'juliet', password: PASSWORD, resource: 'doomed' })) as Client;
      doomed.on('error', () => undefined);
      await online(doomed);
      await waitFor(romeo, isPresence('juliet@capulet.lit/doomed'));
      a.kill('SIGKILL');
      await new Promise((r) => a.once('exit', r));
      // a contact logging in now does not see the dead resource
      const romeo2 = await login('romeo', 'montague.lit', 'mobile');
      await online(romeo2);
      await new Promise((r) => setTimeout(r, 1500));
      t.notOk(romeo2.received.some(isPresence('juliet@capulet.lit/doomed')), 'a probe skips a resource whose session is gone');
      // Juliet's next login (any resource, any instance) removes the stale item: contacts see it go
      clear(romeo);
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await waitFor(romeo, isPresence('juliet@capulet.lit/doomed', 'unavailable'));
      t.pass('the stale resource went unavailable for the contacts that saw it');
      await Promise.all([juliet.stop(), romeo.stop(), romeo2.stop()]);
    });

    t.test('deny, revoke, unsubscribe', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      const nurse = await login('nurse', 'capulet.lit', 'chamber');
      const romeo = await login('romeo', 'montague.lit', 'orchard');
      await Promise.all([online(juliet), online(nurse), online(romeo)]);
      await waitFor(romeo, isPresence('juliet@capulet.lit/balcony'));
      clear(juliet, nurse, romeo);
      // deny
      await nurse.send(xml('presence', { to: 'juliet@capulet.lit', type: 'subscribe' }));
      await waitFor(juliet, isPresence('nurse@capulet.lit', 'subscribe'));
      await juliet.send(xml('presence', { to: 'nurse@capulet.lit', type: 'unsubscribed' }));
      await waitFor(nurse, isPresence('juliet@capulet.lit', 'unsubscribed'));
      await waitFor(nurse, isPush('juliet@capulet.lit', { subscription: 'none', ask: undefined }));
      await juliet.send(xml('presence', {}, xml('status', {}, 'not for the nurse')));
      await new Promise((r) => setTimeout(r, 500));
      t.notOk(nurse.received.some(isPresence('juliet@capulet.lit/balcony')), 'a denied requester gets no presence');
      // revoke: Juliet takes Romeo's subscription away
      clear(juliet, romeo);
      await juliet.send(xml('presence', { to: 'romeo@montague.lit', type: 'unsubscribed' }));
      await waitFor(romeo, isPresence('juliet@capulet.lit/balcony', 'unavailable'));
      await waitFor(romeo, isPresence('juliet@capulet.lit', 'unsubscribed'));
      await waitFor(romeo, isPush('juliet@capulet.lit', { subscription: 'from' }));
      await waitFor(juliet, isPush('romeo@montague.lit', { subscription: 'to' }));
      clear(romeo);
      await juliet.send(xml('presence', {}, xml('status', {}, 'after revoke')));
      await new Promise((r) => setTimeout(r, 500));
      t.notOk(romeo.received.some(isPresence('juliet@capulet.lit/balcony')), 'no presence after revocation');
      // unsubscribe: Juliet stops following Romeo
      clear(juliet, romeo);
      await juliet.send(xml('presence', { to: 'romeo@montague.lit', type: 'unsubscribe' }));
      await waitFor(juliet, isPush('romeo@montague.lit', { subscription: 'none' }));
      await waitFor(juliet, isPresence('romeo@montague.lit/orchard', 'unavailable'));
      await waitFor(romeo, isPresence('juliet@capulet.lit', 'unsubscribe'));
      await waitFor(romeo, isPush('juliet@capulet.lit', { subscription: 'none' }));
      t.pass('both sides back to none');
      await Promise.all([juliet.stop(), nurse.stop(), romeo.stop()]);
    });

    t.test('pre-approval (RFC 6121 §3.4): a later request is approved at once', async (t) => {
      const nurse = await login('nurse', 'capulet.lit', 'chamber');
      const benvolio = await login('benvolio', 'montague.lit', 'street');
      await Promise.all([online(nurse, xml('status', {}, 'pre-approving')), online(benvolio)]);
      clear(nurse, benvolio);
      await nurse.send(xml('presence', { to: 'benvolio@montague.lit', type: 'subscribed' }));
      await waitFor(nurse, isPush('benvolio@montague.lit', { approved: 'true', subscription: 'none' }));
      await new Promise((r) => setTimeout(r, 300));
      t.notOk(benvolio.received.some(isPresence('nurse@capulet.lit', 'subscribed')), 'a pre-approval is not sent to the contact');
      await benvolio.send(xml('presence', { to: 'nurse@capulet.lit', type: 'subscribe' }));
      await waitFor(benvolio, isPresence('nurse@capulet.lit', 'subscribed'));
      await waitFor(benvolio, isPush('nurse@capulet.lit', { subscription: 'to' }));
      const p = await waitFor(benvolio, isPresence('nurse@capulet.lit/chamber'));
      t.equal(p.getChildText('status'), 'pre-approving', "and the nurse's presence follows");
      await waitFor(nurse, isPush('benvolio@montague.lit', { subscription: 'from', approved: undefined }));
      t.notOk(nurse.received.some(isPresence('benvolio@montague.lit', 'subscribe')), 'the request was never shown to the nurse');
      await Promise.all([nurse.stop(), benvolio.stop()]);
    });

    t.test('remove cancels both directions', async (t) => {
      const benvolio = await login('benvolio', 'montague.lit', 'street');
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await Promise.all([online(benvolio), online(juliet)]);
      // mutual subscription first
      for (const [a, aj, b, bj] of [[benvolio, 'benvolio@montague.lit', juliet, 'juliet@capulet.lit'], [juliet, 'juliet@capulet.lit', benvolio, 'benvolio@montague.lit']] as const) {
        await a.send(xml('presence', { to: bj, type: 'subscribe' }));
        await waitFor(b, isPresence(aj, 'subscribe'));
        await b.send(xml('presence', { to: aj, type: 'subscribed' }));
        await waitFor(a, isPresence(bj, 'subscribed'));
      }
      await waitFor(benvolio, isPush('juliet@capulet.lit', { subscription: 'both' }));
      clear(juliet, benvolio);
      await juliet.iqCaller.request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'benvolio@montague.lit', subscription: 'remove' }))));
      await waitFor(juliet, isPush('benvolio@montague.lit', { subscription: 'remove' }));
      await waitFor(benvolio, isPresence('juliet@capulet.lit', 'unsubscribe'));
      await waitFor(benvolio, isPresence('juliet@capulet.lit', 'unsubscribed'));
      await waitFor(benvolio, isPush('juliet@capulet.lit', { subscription: 'none' }));
      t.notOk((await rosterOf(juliet)).has('benvolio@montague.lit'), 'gone from the roster');
      await Promise.all([juliet.stop(), benvolio.stop()]);
    });

    t.test('a request to a user who never logged in through the proxy reaches them after their first login', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      clear(juliet);
      await juliet.send(xml('presence', { to: 'paris@capulet.lit', type: 'subscribe' }));
      await waitFor(juliet, isPush('paris@capulet.lit', { ask: 'subscribe' }));
      await new Promise((r) => setTimeout(r, 500));
      const paris = await login('paris', 'capulet.lit', 'verona');
      await online(paris);
      await waitFor(paris, isPresence('juliet@capulet.lit', 'subscribe'), 20_000);
      t.pass('delivered by the requester\'s retry once the newcomer had an inbox');
      await paris.send(xml('presence', { to: 'juliet@capulet.lit', type: 'unsubscribed' }));
      await waitFor(juliet, isPresence('paris@capulet.lit', 'unsubscribed'));
      await Promise.all([juliet.stop(), paris.stop()]);
    });

    t.test('bad input', async (t) => {
      const juliet = await login('juliet', 'capulet.lit', 'balcony');
      await online(juliet);
      clear(juliet);
      await juliet.send(xml('presence', { to: 'bad@@jid', type: 'subscribe', id: 'bad1' }));
      const err = await waitFor(juliet, (s) => s.name === 'presence' && s.attrs.type === 'error' && s.attrs.id === 'bad1');
      t.ok(err.getChild('error')!.getChild('jid-malformed', 'urn:ietf:params:xml:ns:xmpp-stanzas'), 'jid-malformed');
      await juliet.send(xml('presence', { to: 'paris@verona.invalid', type: 'subscribe', id: 'far1' }));
      const far = await waitFor(juliet, (s) => s.name === 'presence' && s.attrs.type === 'error' && s.attrs.from === 'paris@verona.invalid');
      t.ok(far.getChild('error')!.getChild('remote-server-not-found', 'urn:ietf:params:xml:ns:xmpp-stanzas'), 'a domain the backend cannot reach: remote-server-not-found');
      await juliet.send(xml('presence', { to: 'room@conference.verona.invalid/Juliet', id: 'muc1' }, xml('x', { xmlns: 'http://jabber.org/protocol/muc' })));
      const muc = await waitFor(juliet, (s) => s.name === 'presence' && s.attrs.type === 'error' && s.attrs.id === 'muc1');
      t.ok(muc.getChild('error')!.getChild('service-unavailable', 'urn:ietf:params:xml:ns:xmpp-stanzas'), "a MUC join to another server's room fails visibly");
      await juliet.send(xml('presence', { to: 'romeo@montague.lit', id: 'dir1' }, xml('status', {}, 'just for you')));
      await new Promise((r) => setTimeout(r, 300));
      t.notOk(juliet.received.some((s: Element) => s.attrs.id === 'dir1'), 'a directed presence to an offline user: no error (delivered through the backend)');
      const setErr = await juliet.iqCaller
        .request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'a@b' }), xml('item', { jid: 'c@d' }))))
        .then(() => undefined, (e: { condition?: string }) => e);
      t.equal(setErr?.condition, 'bad-request', 'two items in a roster set');
      const dupErr = await juliet.iqCaller
        .request(xml('iq', { type: 'set' }, xml('query', { xmlns: NS_ROSTER }, xml('item', { jid: 'a@b' }, xml('group', {}, 'x'), xml('group', {}, 'x')))))
        .then(() => undefined, (e: { condition?: string }) => e);
      t.equal(dupErr?.condition, 'bad-request', 'duplicate group');
      await juliet.stop();
    });

    t.test('the backend never saw a subscription presence, a roster iq, or presence payload outside an item', async (t) => {
      const elements = upstreamElements(cap);
      t.ok(elements.length > 100, `captured ${elements.length} elements`);
      const presences = elements.filter((s) => s.name === 'presence');
      t.ok(presences.some((p) => p.attrs.to === undefined), 'bare availability presences were sent');
      for (const p of presences) {
        if (p.attrs.to !== undefined) {
          // directed presence (RFC 6121 §4.6) goes through the backend's routing, as a server does
          t.notOk(['subscribe', 'subscribed', 'unsubscribe', 'unsubscribed'].includes(p.attrs.type ?? ''), `directed, not a subscription: ${p.raw.slice(0, 80)}`);
          continue;
        }
        t.same(p.attrs, {}, `only a bare <presence/>: ${p.raw.slice(0, 80)}`);
        t.notOk(p.childName && p.childName !== 'c', 'with no payload but entity capabilities');
      }
      t.notOk(elements.some((s) => s.name === 'iq' && s.el.getChild('query', NS_ROSTER)), 'no roster iq');
      t.ok(elements.some((s) => s.name === 'iq' && s.raw.includes('http://jabber.org/protocol/pubsub')), 'pubsub instead');
    });
  });
}
