// Races between a login's presence probe and the notifications that arrive while it runs, through the
// rule code with a scripted backend (test/harness/recorder.ts): the answers come in the order that made
// a resource that had logged out show up as available again (issue 6, point 3).
import t from 'tap';
import type { Element } from 'ltx';
import { defaultRules } from '../src/rules/index.js';
import { xml } from '../src/stream/xml.js';
import { NODE_PRESENCE, NODE_ROSTER } from '../src/rules/account.js';
import { NS_ALIVE } from '../src/rules/presence.js';
import { newEntry, toStored } from '../src/rules/roster-item.js';
import type { RuleContext } from '../src/rules/types.js';
import { bind, offer, recordingContext } from './harness/recorder.js';

const EVENT = 'http://jabber.org/protocol/pubsub#event';

function presenceItem(full: string): Element {
  return xml('item', { id: full.slice(full.indexOf('/') + 1) }, xml('presence', { xmlns: 'jabber:client', from: full }));
}

function notification(service: string, child: Element): Element {
  return xml('message', { from: service, to: 'x' }, xml('event', { xmlns: EVENT }, xml('items', { node: NODE_PRESENCE }, child)));
}

/**
 * A session whose "is it alive?" checks wait until the test releases them (the real backend takes a
 * round trip, during which anything may happen).
 */
async function session(jid: string, items: Element[], roster: Element[] = [], holdFromLogin = false) {
  const rules = defaultRules();
  const rec = recordingContext(jid);
  rec.nodes.set(NODE_PRESENCE, items);
  rec.nodes.set(NODE_ROSTER, roster);
  const held: Array<() => void> = [];
  let hold = holdFromLogin;
  const plain = rec.ctx.request.bind(rec.ctx);
  (rec.ctx as { request: RuleContext['request'] }).request = (iq) => {
    if (hold && iq.getChild('alive', NS_ALIVE)) {
      rec.requests.push(iq);
      return new Promise((resolve) => held.push(() => resolve(xml('iq', { type: 'result', from: iq.attrs.to as string }))));
    }
    return plain(iq);
  };
  await bind(rules, rec);
  return {
    rules,
    rec,
    holdAliveChecks: () => (hold = true),
    release: () => {
      hold = false; // later checks are answered at once
      held.splice(0).forEach((f) => f());
    },
    held: () => held.length,
    /** answer only the check held at `i` (in the order asked) */
    releaseAt: (i: number) => held.splice(i, 1)[0]?.(),
  };
}

const tick = () => new Promise((r) => setImmediate(r));

const availableFrom = (els: Element[], from: string) => els.filter((e) => e.name === 'presence' && e.attrs.from === from && e.attrs.type === undefined);

t.test("an own resource that leaves while the login's read of the own node checks it is not shown available", async (t) => {
  // the login reads the own node (stale resources) and keeps that as the own resources' presence
  // (Account.ownKnown): initial presence does not probe the own node again
  const s = await session('juliet@capulet.lit/new', [presenceItem('juliet@capulet.lit/R')], [], true);
  for (let i = 0; i < 20 && s.held() === 0; i++) await tick();
  t.equal(s.held(), 1, 'the login read the item and asks whether R is alive');
  // R logs out now: its unavailable and the retraction arrive before the answer
  await offer(s.rules, s.rec, notification('juliet@capulet.lit', xml('item', { id: 'R' }, xml('presence', { xmlns: 'jabber:client', from: 'juliet@capulet.lit/R', type: 'unavailable' }))), 'backend');
  await offer(s.rules, s.rec, notification('juliet@capulet.lit', xml('retract', { id: 'R' })), 'backend');
  s.release(); // R's session answered just before it closed
  for (let i = 0; i < 20; i++) await tick();
  await offer(s.rules, s.rec, xml('presence'), 'client');
  t.same(availableFrom(s.rec.toClient, 'juliet@capulet.lit/R'), [], 'R is never shown available');
  const ownReads = s.rec.requests.filter((iq) => iq.getChild('pubsub')?.getChild('items')?.attrs.node === NODE_PRESENCE && iq.attrs.to === undefined);
  t.equal(ownReads.length, 1, 'the own node was read once, at the login');
});

t.test("a login read whose checks outlive an initial presence and an unavailable does not stand for the cache", async (t) => {
  const s = await session('juliet@capulet.lit/new', [presenceItem('juliet@capulet.lit/R')], [], true);
  for (let i = 0; i < 20 && s.held() === 0; i++) await tick();
  t.equal(s.held(), 1, "the login's check of R is held");
  const initial = offer(s.rules, s.rec, xml('presence'), 'client');
  for (let i = 0; i < 20 && s.held() < 2; i++) await tick();
  t.equal(s.held(), 2, 'initial presence probed the own node meanwhile (its check of R is held too)');
  s.releaseAt(1); // the probe's check
  await initial;
  await offer(s.rules, s.rec, xml('presence', { type: 'unavailable' }), 'client');
  s.release(); // the login's check answers only now
  for (let i = 0; i < 20; i++) await tick();
  const before = s.rec.requests.length;
  await offer(s.rules, s.rec, xml('presence'), 'client');
  const probes = s.rec.requests.slice(before).filter((iq) => iq.getChild('pubsub')?.getChild('items')?.attrs.node === NODE_PRESENCE && iq.attrs.to === undefined);
  t.equal(probes.length, 1, 'the next initial presence probes the own node');
});

t.test("an own resource that is there at the login is shown at initial presence, and one that comes later when it does", async (t) => {
  const s = await session('juliet@capulet.lit/new', [presenceItem('juliet@capulet.lit/R')]);
  for (let i = 0; i < 20; i++) await tick();
  // before initial presence: the notification is kept, not delivered
  await offer(s.rules, s.rec, notification('juliet@capulet.lit', presenceItem('juliet@capulet.lit/S')), 'backend');
  t.same(availableFrom(s.rec.toClient, 'juliet@capulet.lit/S'), [], 'nothing delivered before initial presence');
  await offer(s.rules, s.rec, xml('presence'), 'client');
  t.equal(availableFrom(s.rec.toClient, 'juliet@capulet.lit/R').length, 1, 'R (read at the login) is shown once');
  t.equal(availableFrom(s.rec.toClient, 'juliet@capulet.lit/S').length, 1, 'S (a notification since) is shown once');
  // going unavailable and back: the cache is dropped, so the own node is probed
  await offer(s.rules, s.rec, xml('presence', { type: 'unavailable' }), 'client');
  const before = s.rec.requests.length;
  await offer(s.rules, s.rec, xml('presence'), 'client');
  const probes = s.rec.requests.slice(before).filter((iq) => iq.getChild('pubsub')?.getChild('items')?.attrs.node === NODE_PRESENCE && iq.attrs.to === undefined);
  t.equal(probes.length, 1, 'a second initial presence probes the own node');
});

t.test("the same for a contact's resource", async (t) => {
  const roster = [xml('item', { id: 'romeo@montague.lit' }, toStored({ ...newEntry('romeo@montague.lit'), subscription: 'both', listed: true }))];
  const s = await session('juliet@capulet.lit/new', [], roster);
  // the contact's node holds one available item
  const plain = s.rec.ctx.request;
  (s.rec.ctx as { request: RuleContext['request'] }).request = (iq) => {
    const items = iq.getChild('pubsub')?.getChild('items');
    if (items && iq.attrs.to === 'romeo@montague.lit') {
      return Promise.resolve(xml('iq', { type: 'result' }, xml('pubsub', { xmlns: 'http://jabber.org/protocol/pubsub' }, xml('items', { node: NODE_PRESENCE }, presenceItem('romeo@montague.lit/orchard')))));
    }
    return plain(iq);
  };
  s.holdAliveChecks();
  const initial = offer(s.rules, s.rec, xml('presence'), 'client');
  for (let i = 0; i < 20 && s.held() === 0; i++) await tick();
  t.equal(s.held(), 1, "the probe asks whether romeo's resource is alive");
  await offer(s.rules, s.rec, notification('romeo@montague.lit', xml('retract', { id: 'orchard' })), 'backend');
  s.release();
  await initial;
  t.same(availableFrom(s.rec.toClient, 'romeo@montague.lit/orchard'), [], 'not shown available after its retraction');
  // a later notification is presence again
  await offer(s.rules, s.rec, notification('romeo@montague.lit', presenceItem('romeo@montague.lit/orchard')), 'backend');
  t.equal(availableFrom(s.rec.toClient, 'romeo@montague.lit/orchard').length, 1, 'a new item after the probe is delivered');
});
