// XEP-0207 §5 beyond the core (muc.test.ts), on both backends with @xmpp/client and two proxy
// instances: private messages between occupants (XEP-0045 §7.5, also a forged one), a nick change
// (§7.6, also a conflict), and the occupant of a proxy instance killed with SIGKILL, which the
// others see leave within the sweep's bound and a joiner never sees.
import t from 'tap';
import type { Element } from 'ltx';
import { spawn } from 'node:child_process';
import { join as pathJoin } from 'node:path';
import { twoProxies } from './harness/two-proxies.js';
import { connect, waitFor, xml } from './harness/xmpp.js';
import { sessions, type Client } from './harness/roster.js';
import { CERTS, ROOT, freePort, waitForPort } from './harness/common.js';
import { SERVICE_CONFIG, SERVICE_USER } from './harness/proxy.js';
import { ALIVE_TIMEOUT_MS } from '../src/rules/alive.js';
import { MUC, MUC_USER, MUC_USERS, PASSWORD, codes, itemOf, presenceFrom } from './harness/muc.js';

const USERS = MUC_USERS;
const ROOM = 'capulets@conference.capulet.lit';
const NS_PRIVATE = 'urn:xep207-proxy:muc-private:0';
/** the in-process proxies' sweep (the default is a minute) */
const SWEEP_MS = 1500;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const fromRoom = presenceFrom(ROOM);
const isSubject = (s: Element) => s.name === 'message' && s.attrs.from === ROOM && s.getChild('subject') !== undefined;
const messageWith = (body: string) => (s: Element) => s.name === 'message' && s.getChildText('body') === body;
const errorOf = (s: Element) => s.getChild('error')?.children.find((c): c is Element => typeof c !== 'string' && c.name !== 'text')?.name;

async function enter(c: Client, nick: string): Promise<void> {
  await c.send(xml('presence', { to: `${ROOM}/${nick}` }, xml('x', { xmlns: MUC })));
  await waitFor(c, isSubject);
}

for (const kind of ['ejabberd', 'prosody'] as const) {
  t.test(`group chat: private messages, nick changes, a dead instance's occupants on ${kind}`, async (t) => {
    const { cap, proxy, other } = await twoProxies(t, kind, USERS, { mucSweepInterval: SWEEP_MS });
    const { login, online } = sessions(t, PASSWORD, () => proxy);

    const juliet = await login('juliet', 'capulet.lit', 'balcony');
    const romeo = await login('romeo', 'montague.lit', 'orchard', other);
    const nurse = await login('nurse', 'capulet.lit', 'chamber');
    await Promise.all([online(juliet), online(romeo), online(nurse)]);
    await enter(juliet, 'Juliet');
    await enter(romeo, 'Romeo');
    await enter(nurse, 'Nurse');
    await waitFor(juliet, fromRoom('Nurse'));
    await waitFor(romeo, fromRoom('Nurse'));

    t.test('private messages (§7.5): to the occupant only, from the verified nick, payload intact', async (t) => {
      await romeo.send(xml('message', { to: `${ROOM}/Juliet`, type: 'chat', id: 'pm1' }, xml('body', {}, 'Lady, by yonder moon <&>'), xml('thread', {}, 't-1'), xml('active', { xmlns: 'http://jabber.org/protocol/chatstates' })));
      const m = await waitFor(juliet, messageWith('Lady, by yonder moon <&>'));
      t.equal(m.attrs.from, `${ROOM}/Romeo`, 'from the room and the nick');
      t.equal(m.attrs.type, 'chat');
      t.equal(m.attrs.id, 'pm1');
      t.equal(m.getChildText('thread'), 't-1', 'thread kept');
      t.ok(m.getChild('active', 'http://jabber.org/protocol/chatstates'), 'chat state kept');
      t.ok(m.getChild('x', MUC_USER), 'the muc#user <x/> (§7.5)');
      t.notOk(JSON.stringify(m.toString()).includes('romeo@'), "the sender's real JID is not shown");
      await juliet.send(xml('message', { to: `${ROOM}/Romeo`, type: 'normal', id: 'pm2' }, xml('body', {}, 'O swear not by the moon')));
      const back = await waitFor(romeo, messageWith('O swear not by the moon'));
      t.equal(back.attrs.from, `${ROOM}/Juliet`);
      t.equal(back.attrs.type, 'normal');
      await sleep(300);
      t.notOk(nurse.received.some(messageWith('Lady, by yonder moon <&>')) || nurse.received.some(messageWith('O swear not by the moon')), 'nobody else got them');
      t.notOk(romeo.received.some(messageWith('Lady, by yonder moon <&>')), 'no echo to the sender');
    });

    t.test('a private message to a nick not in the room, from a non-occupant, forged', async (t) => {
      await juliet.send(xml('message', { to: `${ROOM}/Tybalt`, type: 'chat', id: 'pm3' }, xml('body', {}, 'where art thou')));
      const err = await waitFor(juliet, (s: Element) => s.name === 'message' && s.attrs.type === 'error' && s.attrs.id === 'pm3');
      t.equal(err.attrs.from, `${ROOM}/Tybalt`);
      t.equal(errorOf(err), 'item-not-found');
      t.equal(err.getChild('error')?.attrs.type, 'cancel');
      const b = await login('juliet', 'capulet.lit', 'B');
      await online(b);
      await b.send(xml('message', { to: `${ROOM}/Romeo`, type: 'chat', id: 'pm4' }, xml('body', {}, 'not an occupant')));
      const err2 = await waitFor(b, (s: Element) => s.name === 'message' && s.attrs.type === 'error' && s.attrs.id === 'pm4');
      t.equal(err2.attrs.from, `${ROOM}/Romeo`);
      t.equal(errorOf(err2), 'not-acceptable');
      // the proxies' own iq, sent by a client to the target's real JID, claiming Juliet's nick
      const forged = xml('iq', { type: 'set', to: 'romeo@montague.lit/orchard', id: 'f1' }, xml('private', { xmlns: NS_PRIVATE, room: ROOM, from: 'Juliet', to: 'Romeo' }, xml('message', { xmlns: 'jabber:client', type: 'chat' }, xml('body', {}, 'forged'))));
      const answer = await b.iqCaller.request(forged).then(
        () => 'result',
        (e: { condition?: string }) => e.condition ?? 'error',
      );
      t.equal(answer, 'not-acceptable', "the target's proxy checks the sender against the occupants node");
      await sleep(300);
      t.notOk(romeo.received.some(messageWith('not an occupant')) || romeo.received.some(messageWith('forged')), 'romeo got neither');
      const iq = await juliet.iqCaller.request(xml('iq', { type: 'get', to: `${ROOM}/Romeo` }, xml('vCard', { xmlns: 'vcard-temp' }))).then(
        () => 'result',
        (e: { condition?: string }) => e.condition,
      );
      t.equal(iq, 'feature-not-implemented', 'iqs to occupants are not built');
      await b.stop();
    });

    t.test('nick change (§7.6): a taken nick gets conflict; then 303 and the new nick for everybody', async (t) => {
      await nurse.send(xml('presence', { to: `${ROOM}/Romeo` }));
      const err = await waitFor(nurse, (s: Element) => s.name === 'presence' && s.attrs.type === 'error');
      t.equal(err.attrs.from, `${ROOM}/Romeo`);
      t.equal(errorOf(err), 'conflict');
      await nurse.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'still the nurse')));
      t.equal((await waitFor(juliet, messageWith('still the nurse'))).attrs.from, `${ROOM}/Nurse`, 'the old nick stays');

      const before = { juliet: juliet.received.length, romeo: romeo.received.length, nurse: nurse.received.length };
      await nurse.send(xml('presence', { to: `${ROOM}/Angelica` }, xml('status', {}, 'anon')));
      const own = await waitFor(nurse, fromRoom('Angelica'));
      const nurseGot = nurse.received.slice(before.nurse).filter((s: Element) => s.name === 'presence');
      t.equal(nurseGot.length, 2, 'two presences for the user');
      t.ok(fromRoom('Nurse', 'unavailable')(nurseGot[0]!), 'first the old nick unavailable');
      t.same(codes(nurseGot[0]!), ['110', '303']);
      t.equal(itemOf(nurseGot[0]!)?.attrs.nick, 'Angelica');
      t.same(codes(own), ['110'], 'then the new nick with 110');
      for (const [c, from] of [[juliet, before.juliet], [romeo, before.romeo]] as const) {
        await waitFor(c, fromRoom('Angelica'));
        const got = c.received.slice(from).filter((s: Element) => s.name === 'presence' && (s.attrs.from ?? '').startsWith(ROOM));
        t.same(got.map((s: Element) => `${s.attrs.from!.slice(ROOM.length + 1)}:${s.attrs.type ?? 'available'}`), ['Nurse:unavailable', 'Angelica:available'], 'old nick out, new nick in, in that order');
        t.same(codes(got[0]!), ['303']);
        t.equal(itemOf(got[0]!)?.attrs.nick, 'Angelica');
        t.equal(got[1]!.getChildText('status'), 'anon', 'the presence of the new nick');
      }
      await nurse.send(xml('message', { to: ROOM, type: 'groupchat' }, xml('body', {}, 'call me Angelica')));
      for (const c of [juliet, romeo, nurse]) t.equal((await waitFor(c, messageWith('call me Angelica'))).attrs.from, `${ROOM}/Angelica`);
      await romeo.send(xml('message', { to: `${ROOM}/Angelica`, type: 'chat' }, xml('body', {}, 'to the new nick')));
      t.equal((await waitFor(nurse, messageWith('to the new nick'))).attrs.from, `${ROOM}/Romeo`, 'private messages reach the new nick');
      await juliet.send(xml('message', { to: `${ROOM}/Nurse`, type: 'chat', id: 'old' }, xml('body', {}, 'to the old nick')));
      const gone = await waitFor(juliet, (s: Element) => s.name === 'message' && s.attrs.id === 'old' && s.attrs.type === 'error');
      t.equal(errorOf(gone), 'item-not-found', 'the old nick is gone');
    });

    t.test('the occupant of a proxy instance killed with SIGKILL leaves within the bound; a joiner never sees it', async (t) => {
      const port = await freePort();
      const args = ['--listen', `127.0.0.1:${port}`, '--upstream', `tcp://127.0.0.1:${cap.port}`, '--upstream-tls', 'off', '--tls-cert', pathJoin(CERTS, 'cert.pem'), '--tls-key', pathJoin(CERTS, 'key.pem'), '--log-level', 'warn'];
      const env = { ...process.env };
      if (kind === 'prosody') {
        args.push('--service-jid', SERVICE_CONFIG.serviceJid);
        env.XEP207_SERVICE_PASSWORD = SERVICE_USER[2];
      }
      const a = spawn(process.execPath, [pathJoin(ROOT, 'bin', 'xep207-proxy'), ...args], { stdio: 'ignore', env });
      t.teardown(() => a.kill('SIGKILL'));
      await waitForPort(port, 10_000);
      const doomed = (await connect({ port, domain: 'montague.lit', username: 'benvolio', password: PASSWORD, resource: 'doomed' })) as Client;
      doomed.on('error', () => undefined);
      await online(doomed);
      await enter(doomed, 'Abram'); // the lowest nick: the next one finds it dead and sweeps
      // a second occupant on that instance: a joiner asks one occupant per instance, and all of them once that one is gone
      const doomed2 = (await connect({ port, domain: 'montague.lit', username: 'benvolio', password: PASSWORD, resource: 'doomed2' })) as Client;
      doomed2.on('error', () => undefined);
      await online(doomed2);
      await enter(doomed2, 'Balthasar');
      for (const c of [juliet, romeo, nurse]) await waitFor(c, fromRoom('Balthasar'));
      a.kill('SIGKILL');
      await new Promise((r) => a.once('exit', r));
      const killed = Date.now();
      // a joiner right away: the join checks the listed occupants (one per instance) before showing any
      const nurse2 = await login('nurse', 'capulet.lit', 'garden', other);
      await online(nurse2);
      await enter(nurse2, 'Peter');
      t.notOk(nurse2.received.some(fromRoom('Abram')), 'the joiner never sees the dead occupant');
      t.notOk(nurse2.received.some(fromRoom('Balthasar')), 'nor the other occupant of the dead instance');
      t.ok(nurse2.received.some(fromRoom('Juliet')) && nurse2.received.some(fromRoom('Angelica')), 'but the live ones');
      t.notOk(nurse2.received.some(fromRoom('Nurse')), 'nor the old nick of a nick change');
      const bound = SWEEP_MS + ALIVE_TIMEOUT_MS + 2000;
      for (const c of [juliet, romeo, nurse]) {
        const p = await waitFor(c, fromRoom('Abram', 'unavailable'), bound);
        t.equal(itemOf(p)?.attrs.role, 'none');
      }
      t.ok(Date.now() - killed < bound, `gone for everybody after ${Date.now() - killed} ms (bound ${bound} ms)`);
      const nurse3 = await login('nurse', 'capulet.lit', 'cellar');
      await online(nurse3);
      await enter(nurse3, 'Potpan');
      t.notOk(nurse3.received.some(fromRoom('Abram')) || nurse3.received.some(fromRoom('Balthasar')), 'nor does a later joiner');
      t.ok(nurse3.received.some(fromRoom('Peter')));
    });
  });
}
