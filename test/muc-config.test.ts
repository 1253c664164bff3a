// XEP-0045 §10.2 room configuration as this version supports it, on both backends and two proxy
// instances: the owner's form, a name, a description and a password (disco#info shows them; a joiner
// needs the password); what is not supported is refused, not half-applied; only the owner
// configures; the password is never stored in the clear.
import t from 'tap';
import type { Element } from 'ltx';
import { twoProxies } from './harness/two-proxies.js';
import { upstreamElements } from './harness/capture.js';
import { waitFor, xml } from './harness/xmpp.js';
import { sessions, type Client } from './harness/roster.js';
import { MUC, MUC_USERS, PASSWORD, codes, presenceFrom } from './harness/muc.js';

const ROOM = 'capulets@conference.capulet.lit';
const OWNER = 'http://jabber.org/protocol/muc#owner';
const DATA = 'jabber:x:data';
const DISCO_INFO = 'http://jabber.org/protocol/disco#info';
const fromRoom = presenceFrom(ROOM);
const SECRET = 'montagues-keep-out';

function submit(fields: Record<string, string>): Element {
  return xml(
    'x',
    { xmlns: DATA, type: 'submit' },
    xml('field', { var: 'FORM_TYPE' }, xml('value', {}, 'http://jabber.org/protocol/muc#roomconfig')),
    ...Object.entries(fields).map(([k, v]) => xml('field', { var: k }, xml('value', {}, v))),
  );
}

const ownerIq = (c: Client, type: 'get' | 'set', ...children: Element[]) =>
  c.iqCaller.request(xml('iq', { type, to: ROOM }, xml('query', { xmlns: OWNER }, ...children))).then(
    (res: Element) => ({ res, condition: undefined as string | undefined }),
    (err: { condition?: string }) => ({ res: undefined, condition: err.condition }),
  );

/** The answer to a join: the joiner's own presence (status 110) or its error. */
async function tryJoin(c: Client, nick: string, password?: string): Promise<Element> {
  const id = `join-${nick}-${Math.random().toString(36).slice(2)}`;
  await c.send(xml('presence', { to: `${ROOM}/${nick}`, id }, xml('x', { xmlns: MUC }, ...(password !== undefined ? [xml('password', {}, password)] : []))));
  return waitFor(c, (s: Element) => s.name === 'presence' && s.attrs.from === `${ROOM}/${nick}` && (s.attrs.type === 'error' ? s.attrs.id === id : codes(s).includes('110')));
}

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`room configuration on ${kind}`, async (t) => {
    const { cap, proxy, other } = await twoProxies(t, kind, MUC_USERS);
    const { login, online } = sessions(t, PASSWORD, () => proxy);
    const juliet = await login('juliet', 'capulet.lit', 'balcony');
    const romeo = await login('romeo', 'montague.lit', 'orchard', other);
    const nurse = await login('nurse', 'capulet.lit', 'chamber', other);
    await Promise.all([online(juliet), online(romeo), online(nurse)]);

    const self = await tryJoin(juliet, 'Juliet');
    t.same(codes(self), ['110', '201'], 'the owner created the room');

    t.test('the owner gets the form; a non-owner is forbidden', async (t) => {
      const { res } = await ownerIq(juliet, 'get');
      const form = res!.getChild('query', OWNER)!.getChild('x', DATA)!;
      t.equal(form.attrs.type, 'form');
      const vars = form.getChildren('field').map((f: Element) => f.attrs.var);
      for (const v of ['FORM_TYPE', 'muc#roomconfig_roomname', 'muc#roomconfig_roomdesc', 'muc#roomconfig_persistentroom', 'muc#roomconfig_passwordprotectedroom', 'muc#roomconfig_roomsecret']) t.ok(vars.includes(v), v);
      t.equal((await ownerIq(romeo, 'get')).condition, 'forbidden', "another user's get");
      t.equal((await ownerIq(romeo, 'set', submit({ 'muc#roomconfig_roomname': 'Ours now' }))).condition, 'forbidden', "another user's submit");
    });

    t.test('what this version cannot do is refused, nothing changed', async (t) => {
      t.equal((await ownerIq(juliet, 'set', submit({ 'muc#roomconfig_persistentroom': '0' }))).condition, 'not-acceptable', 'a temporary room');
      t.equal((await ownerIq(juliet, 'set', submit({ 'muc#roomconfig_membersonly': '1', 'muc#roomconfig_roomname': 'Members' }))).condition, 'not-acceptable', 'members-only');
      t.equal((await ownerIq(juliet, 'set', submit({ 'muc#roomconfig_passwordprotectedroom': '1' }))).condition, 'not-acceptable', 'a password-protected room without a password');
      t.equal((await ownerIq(juliet, 'set', xml('destroy', {}))).condition, 'feature-not-implemented', 'destroy');
      const info = await juliet.iqCaller.request(xml('iq', { type: 'get', to: ROOM }, xml('query', { xmlns: DISCO_INFO })));
      t.equal(info.getChild('query')!.getChild('identity')!.attrs.name, 'capulets', 'the name is still the default');
    });

    t.test('a name, a description and a password: disco#info shows them, a joiner needs the password', async (t) => {
      const { res, condition } = await ownerIq(juliet, 'set', submit({ 'muc#roomconfig_roomname': 'House Capulet', 'muc#roomconfig_roomdesc': 'Family only', 'muc#roomconfig_passwordprotectedroom': '1', 'muc#roomconfig_roomsecret': SECRET }));
      t.equal(condition, undefined, 'accepted');
      t.equal(res?.attrs.type, 'result');
      const info = await romeo.iqCaller.request(xml('iq', { type: 'get', to: ROOM }, xml('query', { xmlns: DISCO_INFO })));
      const q = info.getChild('query')!;
      t.equal(q.getChild('identity')!.attrs.name, 'House Capulet', 'the name, on the other instance');
      const features = q.getChildren('feature').map((f: Element) => f.attrs.var);
      t.ok(features.includes('muc_passwordprotected') && !features.includes('muc_unsecured'), 'password protected');
      const desc = q.getChild('x', DATA)?.getChildren('field').find((f: Element) => f.attrs.var === 'muc#roominfo_description');
      t.equal(desc?.getChildText('value'), 'Family only', 'the description in muc#roominfo');
      const form = (await ownerIq(juliet, 'get')).res!.getChild('query', OWNER)!.getChild('x', DATA)!;
      const value = (v: string) => form.getChildren('field').find((f: Element) => f.attrs.var === v)?.getChildText('value');
      t.equal(value('muc#roomconfig_roomname'), 'House Capulet', 'the form shows the values');
      t.equal(value('muc#roomconfig_passwordprotectedroom'), '1');
      t.notOk(value('muc#roomconfig_roomsecret'), 'but never the password');

      const none = await tryJoin(romeo, 'Romeo');
      t.equal(none.attrs.type, 'error');
      t.ok(none.getChild('error')?.getChild('not-authorized'), 'no password: not-authorized');
      const wrong = await tryJoin(romeo, 'Romeo', 'capulets-rule');
      t.ok(wrong.getChild('error')?.getChild('not-authorized'), 'a wrong password: not-authorized');
      t.notOk(juliet.received.some(fromRoom('Romeo')), 'the occupants never saw the refused joiner');
      const ok = await tryJoin(nurse, 'Nurse', SECRET);
      t.same(codes(ok), ['110'], 'the right password enters');
      await waitFor(juliet, fromRoom('Nurse'));
      const stored = upstreamElements(cap).map((e) => e.raw).filter((x) => x.includes('urn:xep207-proxy:muc:0') && x.includes('<config'));
      t.ok(stored.length > 0, 'the configuration was written to the backend');
      t.notOk(stored.some((x) => x.includes(SECRET)), 'never the password in the clear');
    });

    t.test('the owner removes the password: anyone enters again', async (t) => {
      const { condition } = await ownerIq(juliet, 'set', submit({ 'muc#roomconfig_passwordprotectedroom': '0' }));
      t.equal(condition, undefined);
      const ok = await tryJoin(romeo, 'Romeo');
      t.same(codes(ok), ['110']);
    });
  });
}
