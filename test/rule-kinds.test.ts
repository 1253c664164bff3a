// Rule.sees: a lane offers a hook only the stanzas it says it reads (src/session/pipeline.ts), so a
// hook given anything else must pass on. Checked here for every rule of the table, with every stanza
// of the spec's listings and a few the rules answer themselves, each renamed to every kind the hook
// does not declare: the hook returns false and sends, asks and ends nothing. A declaration that
// leaves out a kind a hook handles fails here.
import t from 'tap';
import type { Element } from 'ltx';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRules } from '../src/rules/index.js';
import type { Rule, StanzaKind } from '../src/rules/types.js';
import { laneRoutes } from '../src/session/pipeline.js';
import { eventOf, mentionsPubsub, mentionsPubsubEvent } from '../src/pubsub/events.js';
import { stanzaOf } from '../src/stream/stanza.js';
import { parseElement, xml } from '../src/stream/xml.js';
import { ROOT } from './harness/common.js';
import { bind, listing, offer, recordingContext } from './harness/recorder.js';

const KINDS: readonly StanzaKind[] = ['message', 'presence', 'iq'];
const JID = 'juliet@capulet.lit/balcony';

/** every top-level stanza of every listing, and stanzas the rules claim that no listing shows */
function samples(): Element[] {
  const numbers = readdirSync(join(ROOT, 'fixtures', 'xep-0207')).map((f) => Number(f.slice(0, 2)));
  const out = numbers.flatMap((n) => listing(n));
  const more = [
    `<iq type='get' id='p1' to='capulet.lit'><ping xmlns='urn:xmpp:ping'/></iq>`,
    `<iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>`,
    `<iq type='get' id='d1' to='capulet.lit'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>`,
    `<iq type='get' id='d2' to='capulet.lit'><query xmlns='http://jabber.org/protocol/disco#items'/></iq>`,
    `<iq type='set' id='c1'><enable xmlns='urn:xmpp:carbons:2'/></iq>`,
    `<iq type='get' id='a1' from='romeo@montague.lit/orchard'><alive xmlns='urn:xep207-proxy:alive:0' room='r@conference.capulet.lit' nick='n'/></iq>`,
    `<presence to='r@conference.capulet.lit/juliet'><x xmlns='http://jabber.org/protocol/muc'/></presence>`,
    `<message to='r@conference.capulet.lit' type='groupchat'><body>hi</body></message>`,
    `<message to='romeo@montague.lit' type='chat'><body>hi</body></message>`,
    `<presence type='unavailable'/>`,
    `<presence type='subscribe' to='romeo@montague.lit'/>`,
  ];
  return [...out, ...more.map((x) => parseElement(x))];
}

function renamed(el: Element, name: string): Element {
  const copy = parseElement(el.toString());
  copy.name = name;
  delete copy.attrs.side; // a listing's annotation
  return copy;
}

t.test('every hook passes on the stanzas its rule does not declare', async (t) => {
  const all = samples();
  let checked = 0;
  for (const from of ['client', 'backend'] as const) {
    for (const rule of defaultRules()) {
      const sees = from === 'client' ? rule.sees?.client : rule.sees?.backend;
      const hook = from === 'client' ? rule.fromClient : rule.fromBackend;
      if (!hook || !sees) continue;
      for (const kind of KINDS.filter((k) => !sees.includes(k))) {
        for (const el of all) {
          const rules = defaultRules();
          const rec = recordingContext(JID);
          await bind(rules, rec);
          await offer(rules, rec, xml('presence'), 'client'); // online: presence is delivered to it
          const mine = rules.find((r) => r.name === rule.name) as Rule;
          const before = [rec.toClient.length, rec.toBackend.length, rec.requests.length];
          const stanza = stanzaOf(renamed(el, kind));
          const verdict = await (from === 'client' ? mine.fromClient! : mine.fromBackend!).call(mine, stanza, rec.ctx);
          const after = [rec.toClient.length, rec.toBackend.length, rec.requests.length];
          if (verdict === true || before.join() !== after.join() || rec.ended.length > 0) {
            t.fail(`${rule.name}.${from === 'client' ? 'fromClient' : 'fromBackend'} acted on <${kind}> (${el.toString().slice(0, 120)})`);
          }
          checked++;
        }
      }
    }
  }
  t.ok(checked > 500, `${checked} offers checked`);
});

t.test('a lane offers each kind only to the rules that read it, in table order', async (t) => {
  const rules = defaultRules();
  const client = laneRoutes(rules, 'client');
  const names = (kind: number) => client.byKind[kind]!.map((i) => client.rules[i]!.name);
  t.same(names(0), ['muc', 'chat'], 'a message from the client meets the MUC and chat rules only');
  t.same(names(1), ['muc', 'subscription', 'directed-presence', 'pep', 'presence']);
  t.same(names(2), ['ping', 'own-nodes', 'carbons', 'muc', 'roster', 'pep']);
  const backend = laneRoutes(rules, 'backend');
  t.same(backend.byKind[1]!.map((i) => backend.rules[i]!.name), ['account'], 'presence from the backend: the account rule only');
  t.same(backend.byKind[3], [], 'a nonza from the backend meets no rule that declares its kinds');
  // a rule that declares nothing sees everything, as before
  const open = laneRoutes([...rules, { name: 'open', fromClient: () => false }], 'client');
  for (let k = 0; k < 4; k++) t.equal(open.rules[open.byKind[k]!.at(-1)!]!.name, 'open', `kind ${k}`);
});

t.test("the backend lane's rules share one look at a stanza's bytes, and it is that stanza's", async (t) => {
  const plain = stanzaOf(parseElement(`<message from='romeo@montague.lit/orchard' to='${JID}' type='chat'><body>pubsub? no</body></message>`));
  const form = stanzaOf(listing(10)[0]!); // ejabberd's authorization request: a pubsub form, no event
  const event = stanzaOf(listing(20)[0]!);
  // asked in every order, each stanza gets its own answer (the remembered one is never another's)
  for (const order of [[plain, form, event], [event, plain, form], [form, event, plain, event, event, plain]]) {
    for (const s of order) {
      const which = s === plain ? 'plain' : s === form ? 'form' : 'event';
      t.equal(mentionsPubsub(s), which !== 'plain', `${which}: mentions pubsub`);
      t.equal(mentionsPubsubEvent(s), which === 'event', `${which}: mentions pubsub#event`);
      t.equal(eventOf(s) !== undefined, which === 'event', `${which}: a notification`);
    }
  }
  t.equal(eventOf(event)!.node, listing(20)[0]!.getChild('event')!.getChild('items')!.attrs.node, 'the items node');
});
