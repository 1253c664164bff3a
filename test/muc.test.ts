// XEP-0207 §5 (XEP-0045 as a client sees it) on both backends with @xmpp/client: the proxy's MUC
// service conference.<domain>, joins in XEP-0045 §7.2 order, history and subject, groupchat to every
// occupant (the sender included), a nick conflict, leaves and a dropped connection, a non-occupant's
// message; two proxy instances. The backend's captured stream shows that no MUC presence or groupchat
// message reached it.
import t from 'tap';
import type { Element } from 'ltx';
import { twoProxies } from './harness/two-proxies.js';
import { upstreamElements } from './harness/capture.js';
import { waitFor, xml } from './harness/xmpp.js';
import { sessions, type Client } from './harness/roster.js';
import { MUC, MUC_USERS, PASSWORD, codes, itemOf, presenceFrom } from './harness/muc.js';

const USERS = MUC_USERS;
const ROOM = 'verona@conference.capulet.lit';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const DISCO_ITEMS = 'http://jabber.org/protocol/disco#items';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fromRoom = presenceFrom(ROOM);
const groupchat = (body: string) => (s: Element) => s.name === 'message' && s.attrs.type === 'groupchat' && s.getChildText('body') === body;
const isSubject = (s: Element) => s.name === 'message' && s.attrs.from === ROOM && s.getChild('subject') !== undefined && s.getChild('body') === undefined;
const roomStanzas = (c: Client) => c.received.filter((s: Element) => (s.attrs.from ?? '').startsWith(ROOM));

function join(c: Client, nick: string, withX = true, ...extra: Element[]) {
  return c.send(xml('presence', { to: `${ROOM}/${nick}` }, ...(withX ? [xml('x', { xmlns: MUC }, ...extra)] : [])));
}

function disco(c: Client, ns: string, to: string) {
  return c.iqCaller.request(xml('iq', { type: 'get', to }, xml('query', { xmlns: ns })));
}

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`group chat via pubsub on ${kind}`, async (t) => {
    const { cap, proxy, other } = await twoProxies(t, kind, USERS);
    const { login, online } = sessions(t, PASSWORD, () => proxy);

    const juliet = await login('juliet', 'capulet.lit', 'balcony');
    const romeo = await login('romeo', 'montague.lit', 'orchard', other);
    const nurse = await login('nurse', 'capulet.lit', 'chamber');
    await Promise.all([online(juliet), online(romeo), online(nurse)]);

    t.test('the MUC service in disco', async (t) => {
      const items = await disco(juliet, DISCO_ITEMS, 'capulet.lit');
      t.ok(items.getChild('query')!.getChildren('item').some((i: Element) => i.attrs.jid === 'conference.capulet.lit'), "the server's items list conference.capulet.lit");
      const info = await disco(romeo, DISCO_INFO, 'conference.capulet.lit');
      const q = info.getChild('query')!;
      t.ok(q.getChildren('identity').some((i: Element) => i.attrs.category === 'conference' && i.attrs.type === 'text'), 'identity conference/text');
      t.ok(q.getChildren('feature').some((f: Element) => f.attrs.var === MUC), 'feature muc');
      const none = await disco(juliet, DISCO_INFO, ROOM).then(
        () => 'result',
        (err: { condition?: string }) => err.condition,
      );
      t.equal(none, 'item-not-found', 'no room before the first join');
    });

    t.test('the creator joins: 110 and 201, owner, empty subject; an instant room', async (t) => {
      await join(juliet, 'Juliet');
      const self = await waitFor(juliet, fromRoom('Juliet'));
      t.same(codes(self), ['110', '201']);
      t.equal(itemOf(self)?.attrs.affiliation, 'owner');
      t.equal(itemOf(self)?.attrs.role, 'moderator');
      const subj = await waitFor(juliet, isSubject);
      t.equal(subj.getChildText('subject'), '', 'empty subject');
      const res = await juliet.iqCaller.request(xml('iq', { type: 'set', to: ROOM }, xml('query', { xmlns: 'http://jabber.org/protocol/muc#owner' }, xml('x', { xmlns: 'jabber:x:data', type: 'submit' }))));
      t.equal(res.attrs.type, 'result', 'instant room accepted');
      await juliet.send(xml('message', { to: ROOM, type: 'groupchat', id: 'g1' }, xml('body', {}, 'hello 1')));
      const echo = await waitFor(juliet, groupchat('hello 1'));
      t.equal(echo.attrs.from, `${ROOM}/Juliet`, 'the sender gets its message, from its nick');
      t.equal(echo.attrs.id, 'g1');
      await juliet.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('subject', {}, 'Love')));
      await waitFor(juliet, (s: Element) => s.name === 'message' && s.attrs.from === `${ROOM}/Juliet` && s.getChildText('subject') === 'Love');
    });

    t.test('a second joiner (another instance, no <x/>): §7.2 order, history with delays, subject', async (t) => {
      const before = romeo.received.length;
      await join(romeo, 'Romeo', false);
      await waitFor(romeo, (s: Element) => isSubject(s) && s.getChildText('subject') === 'Love');
      const got = romeo.received.slice(before).filter((s: Element) => (s.attrs.from ?? '').startsWith(ROOM));
      const names = got.map((s: Element) => (s.name === 'presence' ? `p:${s.attrs.from!.slice(ROOM.length + 1)}` : s.getChild('subject') ? 'subject' : `m:${s.getChildText('body')}`));
      t.same(names, ['p:Juliet', 'p:Romeo', 'm:hello 1', 'subject'], 'others, self, history, subject');
      t.equal(itemOf(got[0]!)?.attrs.affiliation, 'owner', 'the creator is the owner');
      t.same(codes(got[1]!), ['110'], 'no 201 for a later joiner');
      t.equal(itemOf(got[1]!)?.attrs.affiliation, 'none');
      const delay = got[2]!.getChild('delay', 'urn:xmpp:delay');
      t.equal(delay?.attrs.from, ROOM, 'history delayed from the room');
      t.ok(delay?.attrs.stamp);
      t.equal(got[2]!.attrs.from, `${ROOM}/Juliet`);
      const seen = await waitFor(juliet, fromRoom('Romeo'));
      t.equal(itemOf(seen)?.attrs.role, 'participant', 'the others get the joiner');
    });

    t.test('a nick conflict, then the third joiner with maxstanzas=0', async (t) => {
      await join(nurse, 'Romeo');
      const err = await waitFor(nurse, (s: Element) => s.name === 'presence' && s.attrs.type === 'error');
      t.equal(err.attrs.from, `${ROOM}/Romeo`);
      t.ok(err.getChild('error')?.getChild('conflict'), 'conflict');
      t.equal(err.getChild('error')?.attrs.type, 'cancel');
      await join(nurse, 'Nurse', true, xml('history', { maxstanzas: '0' }));
      await waitFor(nurse, isSubject);
      const names = roomStanzas(nurse).filter((s: Element) => s.attrs.type !== 'error').map((s: Element) => (s.name === 'presence' ? `p:${s.attrs.from!.slice(ROOM.length + 1)}` : s.getChild('subject') ? 'subject' : 'm'));
      t.same(names.slice(0, 2).sort(), ['p:Juliet', 'p:Romeo'], 'the others first');
      t.same(names.slice(2), ['p:Nurse', 'subject'], 'self, no history, subject');
      t.same(codes(nurse.received.find(fromRoom('Nurse'))!), ['110']);
      await waitFor(juliet, fromRoom('Nurse'));
      await waitFor(romeo, fromRoom('Nurse'));
    });

    t.test('groupchat reaches every occupant, the sender included, payload intact, the verified nick', async (t) => {
      await romeo.send(xml('message', { to: ROOM, type: 'groupchat', id: 'r1' }, xml('body', {}, 'But soft <&>'), xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' }), xml('origin-id', { xmlns: 'urn:xmpp:sid:0', id: 'o-9' })));
      for (const c of [juliet, romeo, nurse]) {
        const m = await waitFor(c, groupchat('But soft <&>'));
        t.equal(m.attrs.from, `${ROOM}/Romeo`);
        t.equal(m.attrs.id, 'r1');
        t.ok(m.getChild('active', 'http://jabber.org/protocol/chatstates'), 'chat state kept');
        t.equal(m.getChild('origin-id', 'urn:xmpp:sid:0')?.attrs.id, 'o-9');
        t.notOk(m.getChild('delay', 'urn:xmpp:delay'), 'live: no delay');
      }
      await sleep(300);
      t.equal(juliet.received.filter(groupchat('But soft <&>')).length, 1, 'once');
    });

    t.test("a non-occupant's groupchat is rejected", async (t) => {
      const b = await login('juliet', 'capulet.lit', 'B');
      await online(b);
      await b.send(xml('message', { to: ROOM, type: 'groupchat', id: 'x1' }, xml('body', {}, 'not in')));
      const err = await waitFor(b, (s: Element) => s.name === 'message' && s.attrs.type === 'error' && s.attrs.id === 'x1');
      t.ok(err.getChild('error')?.getChild('not-acceptable'));
      await sleep(300);
      t.notOk(nurse.received.some(groupchat('not in')), 'nobody got it');
      await b.stop();
    });

    t.test('disco of the room and of the service', async (t) => {
      const items = await disco(nurse, DISCO_ITEMS, 'conference.capulet.lit');
      t.same(items.getChild('query')!.getChildren('item').map((i: Element) => i.attrs.jid), [ROOM]);
      const info = (await disco(romeo, DISCO_INFO, ROOM)).getChild('query')!;
      t.equal(info.getChild('identity')?.attrs.category, 'conference');
      t.equal(info.getChild('identity')?.attrs.name, 'verona');
      const features = info.getChildren('feature').map((f: Element) => f.attrs.var);
      for (const f of [MUC, 'muc_open', 'muc_persistent', 'muc_semianonymous', 'muc_unmoderated', 'muc_unsecured']) t.ok(features.includes(f), f);
      const far = await disco(juliet, DISCO_INFO, 'room@conference.verona.invalid').then(
        () => 'result',
        (err: { condition?: string }) => err.condition ?? 'error',
      );
      t.not(far, 'result', `another server's room: the backend's answer (${far})`);
    });

    t.test('a leave and a dropped connection, seen by the others', async (t) => {
      await nurse.send(xml('presence', { to: `${ROOM}/Nurse`, type: 'unavailable' }));
      const own = await waitFor(nurse, fromRoom('Nurse', 'unavailable'));
      t.same(codes(own), ['110']);
      for (const c of [juliet, romeo]) {
        const p = await waitFor(c, fromRoom('Nurse', 'unavailable'));
        t.equal(itemOf(p)?.attrs.role, 'none');
      }
      await romeo.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'after the nurse left')));
      await waitFor(juliet, groupchat('after the nurse left'));
      await sleep(300);
      t.notOk(nurse.received.some(groupchat('after the nurse left')), 'a leaver gets no more room traffic');
      // the socket closes without a stream close or unavailable presence: a dropped connection
      const socket = (romeo as unknown as { socket: { destroy?(): void; end(): void } }).socket;
      if (typeof socket.destroy === 'function') socket.destroy();
      else socket.end();
      await waitFor(juliet, fromRoom('Romeo', 'unavailable'), 8000);
      t.pass('the dropped occupant left');
    });

    t.test('no MUC presence or groupchat message reached the backend', async (t) => {
      const elements = upstreamElements(cap);
      const muc = elements.filter((s) => (s.name === 'presence' || s.name === 'message') && (s.attrs.to ?? '').includes('conference.'));
      t.same(muc.map((s) => s.raw.slice(0, 100)), [], 'nothing addressed to the MUC service');
      t.notOk(elements.some((s) => s.name === 'message' && s.attrs.type === 'groupchat'), 'no groupchat message');
      t.ok(elements.some((s) => s.name === 'iq' && s.raw.includes('xep207-proxy/muc/') && s.raw.includes('<publish')), 'published to room nodes instead');
    });
  });
}
